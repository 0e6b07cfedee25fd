#!/usr/bin/env python3
"""Tracing overhead per publish through the sidecar, whole process (docs/benchmarks.md, tracing).

    bench/tracing_overhead.py [--build-dir build/release] [--rate 1000] [--duration-s 10] [--runs 8]

Starts a private `outrider broker`, a trace sink (`bench_tracing --mode sink`, answers 200) and
two publish-only sidecars in the same run: one with tracing off, one exporting every span
(`--trace-sampling 1.0`, OTLP/HTTP protobuf to the sink). Each round drives both with
`bench_sidecar_publish` at a fixed rate (rate x duration publishes each). By default
(`--order together`) both generators run at the same time, so both sidecars see the same
machine for the same seconds (a shared 2-core machine's load swings by more than the effect
between two consecutive runs); `--order alternate` drives them in turn, alternating which goes
first. The sidecar's CPU is read from /proc: the sum over its threads of
/proc/<pid>/task/<tid>/schedstat (run time in ns, so no 10 ms tick granularity), split by thread
name (the exporter's threads are "trace-export" and "trace-send"), plus utime from /proc/<pid>/stat and the
threads' context switches. Reports, per publish: the median CPU of each side over the rounds,
the median of the per-round differences (on - off, the paired estimate), their quartiles and
range, the exporter threads' share of the traced side and the rest (request path), user time,
and context switches. `--control` runs the same with tracing off on both sidecars: the A/A
check of the bench's own bias and noise, to read the traced figure against. Each traced
publish records two spans (SERVER and PRODUCER). The
in-process measurement of the same work, without the HTTP and broker I/O and their noise, is
bench_tracing_path.
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
    """(user, system) CPU seconds of the process (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks  # utime, stime


EXPORTER_THREADS = ("trace-export", "trace-send")  # the batching thread and the senders


def threads(pid):
    """{tid: (name, run ns, context switches)} of the process's threads (schedstat: ns resolution)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            run_ns = int((task / "schedstat").read_text().split()[0])
            status = (task / "status").read_text()
            switches = sum(int(m) for m in re.findall(r"ctxt_switches:\s+(\d+)", status))
            out[task.name] = (name, run_ns, switches)
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass  # a thread that just ended
    return out


def usage(before, after):
    """(CPU s of all threads, CPU s of the exporter's threads, context switches) between snapshots."""
    cpu = exporter = 0
    switches = 0
    for tid, (name, run_ns, cs) in after.items():
        _, run0, cs0 = before.get(tid, (name, 0, 0))
        cpu += run_ns - run0
        switches += cs - cs0
        if name in EXPORTER_THREADS:
            exporter += run_ns - run0
    return cpu / 1e9, exporter / 1e9, switches


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
    ap.add_argument("--control", action="store_true",
                    help="A/A check: the 'on' sidecar runs without tracing too, so the reported "
                         "overhead is the bench's own bias and noise")
    ap.add_argument("--traceparent", action="store_true",
                    help="each publish carries a W3C traceparent (as from an instrumented app): "
                         "both sidecars propagate it, the traced one records spans under it")
    ap.add_argument("--order", choices=("together", "alternate"), default="together",
                    help="together: both sidecars loaded at once each round; alternate: in turn")
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
        traced = ["--trace-endpoint", f"http://127.0.0.1:{sink_port}/v1/traces",
                  "--trace-sampling", str(args.sampling)]
        for name, extra in (("off", []), ("on", [] if args.control else traced)):
            p, m = start([outrider, "sidecar", "--app-id", f"bench-{name}", "--app-port", "0",
                          "--dapr-http-port", "0", "--metrics-port", "0", "--io-threads", "1",
                          "--broker", f"127.0.0.1:{broker_port}"] + extra,
                         r"outrider sidecar listening on 127\.0\.0\.1:(\d+)", log(f"sidecar-{name}"))
            procs.append(p)
            sidecars[name] = (p, int(m.group(1)))
        results = {"off": [], "on": []}
        user_results = {"off": [], "on": []}
        switch_results = {"off": [], "on": []}
        exporter_results = []

        def generator(name):
            port = sidecars[name][1]
            return subprocess.Popen(
                [str(build / "bench" / "bench_sidecar_publish"), "--via", "sidecar", "--port",
                 str(port), "--rate", str(args.rate), "--duration-s", str(args.duration_s),
                 "--topic", f"bench-{name}"]
                + (["--traceparent", "true"] if args.traceparent else []),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)

        def measure(names):
            """Drives `names` at once; appends each one's figures."""
            time.sleep(0.5)  # the exporter sends the last round's final batch
            before = {n: (threads(sidecars[n][0].pid), cpu_times(sidecars[n][0].pid)[0])
                      for n in names}
            gens = {n: generator(n) for n in names}
            outs = {n: g.communicate() for n, g in gens.items()}
            time.sleep(0.5)  # the exporter sends this run's last batch (batch delay)
            for n in names:
                pid = sidecars[n][0].pid
                cpu, exporter, switches = usage(before[n][0], threads(pid))
                user = cpu_times(pid)[0] - before[n][1]
                stdout, stderr = outs[n]
                if gens[n].returncode != 0 and '"generator"' not in stdout:
                    sys.exit(f"bench_sidecar_publish failed ({n}): {stderr[-2000:]}{stdout[-2000:]}")
                report = json.loads(stdout.strip().splitlines()[-1])
                count = report["messages"]
                failures = report.get("failures", 0)
                results[n].append(cpu * 1e6 / count)
                user_results[n].append(user * 1e6 / count)
                switch_results[n].append(switches / count)
                if n == "on":
                    exporter_results.append(exporter * 1e6 / count)
                extra = f", exporter threads {exporter * 1e6 / count:.1f}" if n == "on" else ""
                print(f"round {run + 1} tracing {n}: {count} publishes ({failures} failed), "
                      f"sidecar CPU {cpu:.3f} s (user {user:.2f} s), {cpu * 1e6 / count:.1f} "
                      f"us/publish (user {user * 1e6 / count:.1f}{extra}), "
                      f"{switches / count:.2f} context switches/publish, "
                      f"p50 {report['latency_ms']['p50']:.2f} ms", flush=True)

        for run in range(args.runs):
            if args.order == "together":
                measure(("off", "on"))
            else:
                for name in (("off", "on") if run % 2 == 0 else ("on", "off")):
                    measure((name,))
        diffs = [on - off for on, off in zip(results["on"], results["off"])]
        user_diffs = [on - off for on, off in zip(user_results["on"], user_results["off"])]
        rest_diffs = [d - e for d, e in zip(diffs, exporter_results)]

        def r2(x):
            return round(x, 2)
        print(json.dumps({"generator": "tracing_overhead", "rate": args.rate,
                          "sampling": args.sampling, "order": args.order,
                          "control": args.control,
                          "duration_s": args.duration_s, "rounds": args.runs,
                          "publishes_per_run": int(args.rate * args.duration_s),
                          "cpu_us_per_publish_off": r2(quantile(results["off"], 0.5)),
                          "cpu_us_per_publish_on": r2(quantile(results["on"], 0.5)),
                          "overhead_us_per_publish": r2(quantile(diffs, 0.5)),
                          "overhead_us_q1": r2(quantile(diffs, 0.25)),
                          "overhead_us_q3": r2(quantile(diffs, 0.75)),
                          "overhead_us_min": r2(min(diffs)),
                          "overhead_us_max": r2(max(diffs)),
                          "exporter_threads_us_per_publish": r2(quantile(exporter_results, 0.5)),
                          "rest_overhead_us_per_publish": r2(quantile(rest_diffs, 0.5)),
                          "rest_overhead_us_q1": r2(quantile(rest_diffs, 0.25)),
                          "rest_overhead_us_q3": r2(quantile(rest_diffs, 0.75)),
                          "user_cpu_us_per_publish_off": r2(quantile(user_results["off"], 0.5)),
                          "user_cpu_us_per_publish_on": r2(quantile(user_results["on"], 0.5)),
                          "user_overhead_us_per_publish": r2(quantile(user_diffs, 0.5)),
                          "user_overhead_us_q1": r2(quantile(user_diffs, 0.25)),
                          "user_overhead_us_q3": r2(quantile(user_diffs, 0.75)),
                          "switches_per_publish_off": r2(quantile(switch_results["off"], 0.5)),
                          "switches_per_publish_on": r2(quantile(switch_results["on"], 0.5))}),
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
