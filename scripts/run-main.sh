#!/usr/bin/env bash
# The main job of `make run`: the store-pickup demo under `outrider dev` (every service with its
# sidecar, the broker, the collector and its trace UI) once examples/store-pickup/outrider.yaml
# exists; until then the embedded broker in the foreground (data in ./outrider-data/broker,
# clients on 127.0.0.1:7450, Prometheus metrics on 127.0.0.1:7451). Ctrl-C stops it cleanly.
set -euo pipefail
build_dir=${1:-build/release}
demo=examples/store-pickup/outrider.yaml
if [[ -f $demo ]]; then
  echo "Starting the store-pickup demo ($demo). Try, in another terminal:"
  echo "  $build_dir/outrider dev status -f $demo   # apps, health, restarts, queue depths"
  if [[ -t 0 && -t 1 ]]; then
    # On a terminal, under `make run`: job control gives the runner a process group of its own
    # and the terminal, so Ctrl-C reaches only the runner (not make, nor this shell); the shell
    # waits until it has stopped every process and make ends with the runner's exit code instead
    # of being interrupted ("make: *** [run] Interrupt").
    set -m
    status=0
    "$build_dir/outrider" dev -f "$demo" || status=$?
    exit "$status"
  fi
  exec "$build_dir/outrider" dev -f "$demo"
fi
echo "Starting the embedded broker. Try, in another terminal:"
echo "  $build_dir/outrider queues            # queues with depth, in flight, scheduled, dead letters"
echo "  curl -s 127.0.0.1:7451/metrics | head  # Prometheus metrics"
exec "$build_dir/outrider" broker --data-dir outrider-data/broker
