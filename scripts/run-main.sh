#!/usr/bin/env bash
# The main job of `make run`: today the embedded broker in the foreground, data in
# ./outrider-data/broker, clients on 127.0.0.1:7450, Prometheus metrics on 127.0.0.1:7451.
# Ctrl-C stops it cleanly (nothing confirmed is lost). The store-pickup demo under
# `outrider dev` will take this place when it lands.
set -euo pipefail
build_dir=${1:-build/release}
echo "Starting the embedded broker. Try, in another terminal:"
echo "  $build_dir/outrider queues            # queues with depth, in flight, scheduled, dead letters"
echo "  curl -s 127.0.0.1:7451/metrics | head  # Prometheus metrics"
exec "$build_dir/outrider" broker --data-dir outrider-data/broker
