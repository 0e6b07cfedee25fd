#!/usr/bin/env python3
"""Tracing overhead per publish through the sidecar, whole process (docs/benchmarks.md, tracing).

    bench/tracing_overhead.py [--build-dir build/release] [--rate 1000] [--duration-s 10] [--runs 8]

Starts a private `outrider broker`, a trace sink (`bench_tracing --mode sink`, answers 200) and
two publish-only sidecars in the same run: one with tracing off, one exporting every span
(`--trace-sampling 1.0`, OTLP/HTTP protobuf to the sink). Each round drives both in turn with
`bench_sidecar_publish` at a fixed rate (rate x duration publishes each), alternating which goes
first, so slow drifts of the machine's load hit both sides alike. The sidecar's CPU is read from
/proc: the sum over its threads of /proc/<pid>/task/<tid>/schedstat (run time in ns, so no 10 ms
tick granularity), and utime/stime from /proc/<pid>/stat for the user/kernel split. Reports, per
publish: the median CPU of each side over the rounds, the median of the per-round differences
(on - off, the paired estimate), their quartiles and range, and the same for user time.
Each traced publish records two spans (SERVER and PRODUCER). The in-process measurement of the
same work, without the HTTP and broker I/O and their noise, is bench_tracing_path.
Python 3 standard library only.
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
    """CPU seconds of all the process's threads, at ns resolution (schedstat run time)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass  # a thread that just ended
    return total / 1e9


def quantile(xs, q):
    xs = sorted(xs)
    if not xs:
        return 0.0
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


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
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--duration-s", type=float, default=10)
    ap.add_argument("--runs", type=int, default=8, help="rounds (each: one run per side)")
    ap.add_argument("--sampling", type=float, default=1.0,
                    help="the traced sidecar's --trace-sampling (0: contexts only, nothing exported)")
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
                                    "--trace-sampling", str(args.sampling)])):
            p, m = start([outrider, "sidecar", "--app-id", f"bench-{name}", "--app-port", "0",
                          "--dapr-http-port", "0", "--metrics-port", "0", "--io-threads", "1",
                          "--broker", f"127.0.0.1:{broker_port}"] + extra,
                         r"outrider sidecar listening on 127\.0\.0\.1:(\d+)", log(f"sidecar-{name}"))
            procs.append(p)
            sidecars[name] = (p, int(m.group(1)))
        results = {"off": [], "on": []}
        user_results = {"off": [], "on": []}
        for run in range(args.runs):
            order = ("off", "on") if run % 2 == 0 else ("on", "off")
            for name in order:
                p, port = sidecars[name]
                time.sleep(0.5)  # the other side's exporter finishes its last batch
                before = cpu_seconds(p.pid)
                user_before = cpu_times(p.pid)[0]
                out = subprocess.run([str(build / "bench" / "bench_sidecar_publish"), "--via",
                                      "sidecar", "--port", str(port), "--rate", str(args.rate),
                                      "--duration-s", str(args.duration_s), "--topic",
                                      f"bench-{name}"], capture_output=True, text=True)
                if out.returncode != 0 and '"generator"' not in out.stdout:
                    sys.exit(f"bench_sidecar_publish failed ({name}): {out.stderr[-2000:]}"
                             f"{out.stdout[-2000:]}")
                time.sleep(0.5)  # the exporter sends this run's last batch (batch delay 200 ms)
                cpu = cpu_seconds(p.pid) - before
                user = cpu_times(p.pid)[0] - user_before
                report = json.loads(out.stdout.strip().splitlines()[-1])
                n = report["messages"]
                failures = report.get("failures", 0)
                results[name].append(cpu * 1e6 / n)
                user_results[name].append(user * 1e6 / n)
                print(f"round {run + 1} tracing {name}: {n} publishes ({failures} failed), "
                      f"sidecar CPU {cpu:.3f} s (user {user:.2f} s), {cpu * 1e6 / n:.1f} us/publish "
                      f"(user {user * 1e6 / n:.1f}), p50 {report['latency_ms']['p50']:.2f} ms",
                      flush=True)
        diffs = [on - off for on, off in zip(results["on"], results["off"])]
        user_diffs = [on - off for on, off in zip(user_results["on"], user_results["off"])]

        def r2(x):
            return round(x, 2)
        print(json.dumps({"generator": "tracing_overhead", "rate": args.rate,
                          "sampling": args.sampling,
                          "duration_s": args.duration_s, "rounds": args.runs,
                          "publishes_per_run": int(args.rate * args.duration_s),
                          "cpu_us_per_publish_off": r2(quantile(results["off"], 0.5)),
                          "cpu_us_per_publish_on": r2(quantile(results["on"], 0.5)),
                          "overhead_us_per_publish": r2(quantile(diffs, 0.5)),
                          "overhead_us_q1": r2(quantile(diffs, 0.25)),
                          "overhead_us_q3": r2(quantile(diffs, 0.75)),
                          "overhead_us_min": r2(min(diffs)),
                          "overhead_us_max": r2(max(diffs)),
                          "user_cpu_us_per_publish_off": r2(quantile(user_results["off"], 0.5)),
                          "user_cpu_us_per_publish_on": r2(quantile(user_results["on"], 0.5)),
                          "user_overhead_us_per_publish": r2(quantile(user_diffs, 0.5)),
                          "user_overhead_us_q1": r2(quantile(user_diffs, 0.25)),
                          "user_overhead_us_q3": r2(quantile(user_diffs, 0.75))}),
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
