#!/usr/bin/env python3
"""Tracing overhead per publish through the sidecar (docs/tracing.md, docs/benchmarks.md).

    bench/tracing_overhead.py [--build-dir build/release] [--rate 2000] [--duration-s 15] [--runs 3]

Starts a private `outrider broker`, a trace sink (`bench_tracing --mode sink`, answers 200) and
two publish-only sidecars in the same run: one with tracing off, one exporting every span
(`--trace-sampling 1.0`, OTLP/HTTP protobuf to the sink). Drives each in turn with
`bench_sidecar_publish` at a fixed rate and reads the sidecar's CPU time (utime + stime from
/proc/<pid>/stat) before and after: CPU microseconds per publish, off vs on, and the difference,
in all and user-space only (the kernel share -- epoll, sends, wakeups -- swings most with the
machine's load).
Each traced publish records two spans (SERVER and PRODUCER). Python 3 standard library only.
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_times(pid):
    """(user, system) CPU seconds of the process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks  # utime, stime


def cpu_seconds(pid):
    return sum(cpu_times(pid))


def start(argv, ready, log):
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        text = Path(log.name).read_text()
        m = re.search(ready, text)
        if m:
            return p, m
        if p.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{argv[0]} did not start: {Path(log.name).read_text()[-2000:]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=str(ROOT / "build" / "release"))
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--duration-s", type=float, default=15)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    build = Path(args.build_dir)
    outrider = str(build / "outrider")
    procs = []
    tmp = tempfile.TemporaryDirectory(prefix="outrider-tracing-bench-")
    try:
        def log(name):
            return open(Path(tmp.name) / f"{name}.log", "w+")
        broker_port = free_port()
        p, _ = start([outrider, "broker", "--listen", f"127.0.0.1:{broker_port}", "--data-dir",
                      f"{tmp.name}/broker", "--metrics-listen", ""],
                     r"outrider broker listening on", log("broker"))
        procs.append(p)
        sink_port = free_port()
        p, _ = start([str(build / "bench" / "bench_tracing"), "--mode", "sink", "--port",
                      str(sink_port)], r"sink listening", log("sink"))
        procs.append(p)
        sidecars = {}
        for name, extra in (("off", []),
                            ("on", ["--trace-endpoint", f"http://127.0.0.1:{sink_port}/v1/traces",
                                    "--trace-sampling", "1.0"])):
            p, m = start([outrider, "sidecar", "--app-id", f"bench-{name}", "--app-port", "0",
                          "--dapr-http-port", "0", "--metrics-port", "0", "--io-threads", "1",
                          "--broker", f"127.0.0.1:{broker_port}"] + extra,
                         r"outrider sidecar listening on 127\.0\.0\.1:(\d+)", log(f"sidecar-{name}"))
            procs.append(p)
            sidecars[name] = (p, int(m.group(1)))
        results = {"off": [], "on": []}
        user_results = {"off": [], "on": []}
        for run in range(args.runs):
            for name in ("off", "on"):
                p, port = sidecars[name]
                before = cpu_seconds(p.pid)
                user_before = cpu_times(p.pid)[0]
                out = subprocess.run([str(build / "bench" / "bench_sidecar_publish"), "--via",
                                      "sidecar", "--port", str(port), "--rate", str(args.rate),
                                      "--duration-s", str(args.duration_s), "--topic",
                                      f"bench-{name}"], capture_output=True, text=True, check=True)
                time.sleep(1)  # let the exporter finish its last batch
                cpu = cpu_seconds(p.pid) - before
                user = cpu_times(p.pid)[0] - user_before
                report = json.loads(out.stdout.strip().splitlines()[-1])
                n = report["messages"]
                results[name].append(cpu * 1e6 / n)
                user_results[name].append(user * 1e6 / n)
                print(f"run {run + 1} tracing {name}: {n} publishes, sidecar CPU {cpu:.2f} s "
                      f"(user {user:.2f} s), {cpu * 1e6 / n:.1f} us/publish "
                      f"(user {user * 1e6 / n:.1f}), p50 {report['latency_ms']['p50']:.2f} ms",
                      flush=True)
        def median(xs):
            return sorted(xs)[len(xs) // 2]
        off = median(results["off"])
        on = median(results["on"])
        user_off = median(user_results["off"])
        user_on = median(user_results["on"])
        print(json.dumps({"generator": "tracing_overhead", "rate": args.rate,
                          "duration_s": args.duration_s, "runs": args.runs,
                          "cpu_us_per_publish_off": round(off, 2),
                          "cpu_us_per_publish_on": round(on, 2),
                          "overhead_us_per_publish": round(on - off, 2),
                          "user_cpu_us_per_publish_off": round(user_off, 2),
                          "user_cpu_us_per_publish_on": round(user_on, 2),
                          "user_overhead_us_per_publish": round(user_on - user_off, 2)}),
              flush=True)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
