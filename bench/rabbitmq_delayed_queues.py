#!/usr/bin/env python3
"""Where the rabbitmq backend's delayed-delivery lag comes from: runs bench_rabbitmq_delayed against
a private RabbitMQ node (bench/run's RabbitServer) and samples every few seconds the queues that
hold messages (`rabbitmqctl list_queues name messages_ready messages_unacknowledged`): the delay
levels (L<n>), the due queue (Ldue: our consumer), the schedule journal (Ljournal, a stream) and
the subscription queue. A due queue that stays near 0 ready while levels hold more than their
TTL's worth means RabbitMQ's dead-lettering between levels is the bound, not our forwarder.

  bench/rabbitmq_delayed_queues.py [MESSAGES [WINDOW_S [LEAD_S]]]   (default 20000 30 10)
Run from the repository root after building bench_rabbitmq_delayed in build/release.
"""
import importlib.machinery
import importlib.util
import pathlib
import subprocess
import sys
import tempfile
import time

loader = importlib.machinery.SourceFileLoader("benchrun", str(pathlib.Path(__file__).with_name("run")))
spec = importlib.util.spec_from_loader("benchrun", loader)
br = importlib.util.module_from_spec(spec)
loader.exec_module(br)


def main():
    defaults = ["20000", "30", "10"]
    messages, window_s, lead_s = sys.argv[1:4] + defaults[len(sys.argv[1:4]):]
    srv = br.RabbitServer(pathlib.Path(tempfile.mkdtemp(prefix="rabbitmq-delayed-queues-"))).start()
    try:
        gen = subprocess.Popen(["build/release/bench/bench_rabbitmq_delayed", "--port", str(srv.port),
                                "--messages", messages, "--window-s", window_s, "--lead-s", lead_s,
                                "--size", "1024"], stdout=subprocess.PIPE, text=True)
        t0 = time.time()
        while gen.poll() is None:
            time.sleep(8)
            out = subprocess.run([str(br.RABBITMQ_BIN / "rabbitmqctl"), "-n", srv.node, "list_queues", "-q",
                                  "name", "messages_ready", "messages_unacknowledged"], env=srv._env(),
                                 capture_output=True, text=True).stdout
            rows = [line.split("\t") for line in out.splitlines()[1:] if line.strip()]
            busy = [r for r in rows if len(r) == 3 and (r[1] != "0" or r[2] != "0")]
            print(f"t={time.time() - t0:.0f}s ready/unacked:",
                  " ".join(f"{r[0].replace('outrider.delay.', 'L')}={r[1]}/{r[2]}" for r in sorted(busy)),
                  flush=True)
        print(gen.stdout.read().strip())
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
