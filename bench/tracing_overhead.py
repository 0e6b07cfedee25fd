#!/usr/bin/env python3
"""Tracing overhead per publish through the sidecar, whole process (docs/benchmarks.md, tracing).

    bench/tracing_overhead.py [--build-dir build/release] [--rates 1000,5000] [--duration-s 10]
                              [--runs 8] [--traceparent] [--control] [--no-aa] [--no-syscalls]

Starts a private `outrider broker`, a trace sink (`bench_tracing --mode sink`: answers 200 and
counts the OTLP spans it decodes) and three publish-only sidecars in the same run: "off" (tracing
off), "on" (exporting every span: `--trace-sampling 1.0`, OTLP/HTTP protobuf to the sink) and
"aa" (tracing off again: the A/A control, measured in the same rounds, `--no-aa` leaves it out).
Each round drives all three with `bench_sidecar_publish` at a fixed rate (rate x duration
publishes each, after its 200 sequential warm-up publishes, which are in the divisor). By default
(`--order together`) the generators run at the same time (which one starts first alternates), so
the sidecars see the same machine for the same seconds (a shared 2-core machine's load swings by
more than the effect between two consecutive runs); `--order alternate` drives them in turn.
With several `--rates` the rounds of each rate run one after the other, same processes.

The sidecar's CPU is read from /proc: the sum over its threads of
/proc/<pid>/task/<tid>/schedstat (run time in ns, so no 10 ms tick granularity), split by thread
name (the exporter's threads are "trace-export" and "trace-send"), plus utime from
/proc/<pid>/stat (10 ms ticks: coarse at short rounds) and the threads' context switches; with
perf available, `perf stat -e raw_syscalls:sys_enter -p PID` counts each sidecar's system calls
per round (`--no-syscalls`: not). Reports, per rate and per publish: the median CPU of each
sidecar over the rounds; the per-round differences on - off (the tracing overhead) and aa - off
(the noise floor of the same rounds), each as median, quartiles, range and a ~95% interval of the
median (the sign test's order statistics); the exporter threads' CPU and the rest; user time,
context switches, minor page faults and system calls; and the differences adjusted for the rounds' wake-ups (see
`adjusted`: the request path's context switches per publish explain most of the noise, and the
A/A pair checks the adjustment). At the end the sink's span count must equal two spans per
publish of the traced sidecar (SERVER and PRODUCER), warm-ups included, or the run fails: the
traced side really exported everything. `--control`: tracing off on "on" too. The in-process
measurement of the same work, without the HTTP and broker I/O and their noise, is
bench_tracing_path; the instruction counts, bench/tracing_callgrind.py.
Python 3 standard library (and perf, if installed).
"""
import argparse
import json
import os
import math
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_times(pid):
    """(user, system) CPU seconds of the process (clock ticks), and its minor page faults."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks, int(fields[7])  # utime, stime, minflt


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
    """(CPU s of all threads, CPU s of the exporter's threads, context switches of all threads,
    context switches of the other threads: the request path's wake-ups) between snapshots."""
    cpu = exporter = 0
    switches = request_switches = 0
    for tid, (name, run_ns, cs) in after.items():
        _, run0, cs0 = before.get(tid, (name, 0, 0))
        cpu += run_ns - run0
        switches += cs - cs0
        if name in EXPORTER_THREADS:
            exporter += run_ns - run0
        else:
            request_switches += cs - cs0
    return cpu / 1e9, exporter / 1e9, switches, request_switches


def quantile(xs, q):
    xs = sorted(xs)
    if not xs:
        return 0.0
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


WARMUP_PUBLISHES = 200  # bench_sidecar_publish's sequential warm-up, before its timed run


def median_interval(xs, confidence=0.95):
    """Distribution-free interval of the median of xs: order statistics x(k), x(n-k+1) with
    P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2 (the sign test's interval)."""
    xs = sorted(xs)
    n = len(xs)
    if n < 6:
        return xs[0], xs[-1]
    tail = (1 - confidence) / 2
    k, cum = 0, 0.0
    while True:
        p = math.comb(n, k) / 2 ** n
        if cum + p > tail:
            break
        cum += p
        k += 1
    k = max(k, 1)
    return xs[k - 1], xs[n - k]


def adjusted(res):
    """The paired differences adjusted for the rounds' wake-ups. Most of the noise of one
    sidecar's CPU per publish against another's in the same round is how many publishes each
    wake-up of its request path served (a wake-up costs a context switch and an epoll round,
    several us): the request path's context switches per publish vary from round to round and
    sidecar to sidecar. Fits y = d_X + k * x over both pairs X (on - off, aa - off), with y the
    difference of CPU per publish without the exporter's threads and x the difference of the
    request path's context switches per publish, one slope k for both (least squares within
    each pair), and reports d_on (plus the exporter threads' median CPU: the tracing overhead at
    equal wake-ups) and d_aa (the same estimate of a difference that is zero: the check of the
    method). Tracing does not wake the request path (the exporter's threads have their own
    switches); if its extra CPU lets more publishes share a wake-up, the adjustment adds that
    back (k x < 0 is subtracted), so it errs towards a larger overhead."""
    def pair(x_name):
        y = [a - e - b for a, e, b in zip(res[x_name]["cpu"], res[x_name]["exporter"],
                                          res["off"]["cpu"])]
        x = [a - b for a, b in zip(res[x_name]["request_switches"],
                                   res["off"]["request_switches"])]
        return x, y
    pairs = {n: pair(n) for n in ("on", "aa")}
    sxx = sxy = 0.0
    for x, y in pairs.values():
        mx, my = sum(x) / len(x), sum(y) / len(y)
        sxx += sum((a - mx) ** 2 for a in x)
        sxy += sum((a - mx) * (b - my) for a, b in zip(x, y))
    k = sxy / sxx if sxx > 0 else 0.0
    out = {"slope_us_per_switch": round(k, 2)}
    exporter = quantile(res["on"]["exporter"], 0.5)
    for n, (x, y) in pairs.items():
        resid = [b - k * a for a, b in zip(x, y)]
        lo, hi = median_interval(resid)
        add = exporter if n == "on" else 0.0
        out[f"d_{n}_us"] = {"median": round(quantile(resid, 0.5) + add, 2),
                            "q1": round(quantile(resid, 0.25) + add, 2),
                            "q3": round(quantile(resid, 0.75) + add, 2),
                            "ci95_lo": round(lo + add, 2), "ci95_hi": round(hi + add, 2)}
    return out


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
    ap.add_argument("--rate", type=float, default=None,
                    help="one rate (publishes per s per sidecar); same as --rates R")
    ap.add_argument("--rates", default="1000",
                    help="comma-separated rates, measured one after the other with the same "
                         "processes (e.g. 1000,5000)")
    ap.add_argument("--duration-s", type=float, default=10)
    ap.add_argument("--runs", type=int, default=8,
                    help="rounds per rate (each: one run per sidecar)")
    ap.add_argument("--no-aa", dest="aa", action="store_false",
                    help="without the third sidecar (tracing off) whose difference to 'off' in "
                         "the same rounds is the A/A noise floor")
    ap.add_argument("--cpu", default="",
                    help="taskset the sidecars to these CPUs (e.g. 1): the three then share one "
                         "core's caches and moments, and the other processes run elsewhere when "
                         "the kernel can")
    ap.add_argument("--no-syscalls", dest="syscalls", action="store_false",
                    help="do not count each sidecar's system calls with perf stat")
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
    rates = [args.rate] if args.rate else [float(r) for r in args.rates.split(",")]
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
        names = ("off", "on") + (("aa",) if args.aa else ())
        for name in names:
            extra = traced if name == "on" and not args.control else []
            pin = ["taskset", "-c", args.cpu] if args.cpu else []
            p, m = start(pin + [outrider, "sidecar", "--app-id", f"bench-{name}", "--app-port", "0",
                          "--dapr-http-port", "0", "--metrics-port", "0", "--io-threads", "1",
                          "--broker", f"127.0.0.1:{broker_port}"] + extra,
                         r"outrider sidecar listening on 127\.0\.0\.1:(\d+)", log(f"sidecar-{name}"))
            procs.append(p)
            sidecars[name] = (p, int(m.group(1)))
        perf = shutil.which("perf") if args.syscalls else None

        def sink_spans():
            with urllib.request.urlopen(f"http://127.0.0.1:{sink_port}/count", timeout=10) as r:
                return json.loads(r.read())["spans"]

        def generator(name, rate):
            port = sidecars[name][1]
            return subprocess.Popen(
                [str(build / "bench" / "bench_sidecar_publish"), "--via", "sidecar", "--port",
                 str(port), "--rate", str(rate), "--duration-s", str(args.duration_s),
                 "--topic", f"bench-{name}"]
                + (["--traceparent", "true"] if args.traceparent else []),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)

        def syscall_counter(name):
            """perf stat counting the sidecar's system calls (all its threads) until stopped."""
            if not perf:
                return None
            return subprocess.Popen([perf, "stat", "-x", ",", "-e", "raw_syscalls:sys_enter",
                                     "-p", str(sidecars[name][0].pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

        def syscalls_of(counter):
            if counter is None:
                return None
            counter.send_signal(signal.SIGINT)
            _, err = counter.communicate()
            for line in err.splitlines():
                fields = line.split(",")
                if len(fields) > 2 and "raw_syscalls:sys_enter" in line and fields[0].isdigit():
                    return int(fields[0])
            return None

        per_rate = {}
        expected_spans = 0
        spans_at_start = sink_spans()
        for rate in rates:
            res = {n: {"cpu": [], "user": [], "switches": [], "exporter": [], "syscalls": [],
                       "request_switches": [], "faults": []}
                   for n in names}
            per_rate[rate] = res

            def measure(group, run):
                """Drives the sidecars of `group` at once; appends each one's figures."""
                nonlocal expected_spans
                time.sleep(0.5)  # the exporter sends the last round's final batch
                order = list(group)
                if run % 2:
                    order.reverse()  # which generator starts first alternates
                before = {n: (threads(sidecars[n][0].pid), *cpu_times(sidecars[n][0].pid)[0::2])
                          for n in order}
                counters = {n: syscall_counter(n) for n in order}
                gens = {n: generator(n, rate) for n in order}
                outs = {n: g.communicate() for n, g in gens.items()}
                time.sleep(0.5)  # the exporter sends this run's last batch (batch delay)
                after = {n: (threads(sidecars[n][0].pid), *cpu_times(sidecars[n][0].pid)[0::2])
                         for n in order}
                calls = {n: syscalls_of(c) for n, c in counters.items()}
                for n in group:
                    cpu, exporter, switches, request_switches = usage(before[n][0], after[n][0])
                    user = after[n][1] - before[n][1]
                    faults = after[n][2] - before[n][2]
                    stdout, stderr = outs[n]
                    if gens[n].returncode != 0 and '"generator"' not in stdout:
                        sys.exit(f"bench_sidecar_publish failed ({n}): {stderr[-2000:]}"
                                 f"{stdout[-2000:]}")
                    report = json.loads(stdout.strip().splitlines()[-1])
                    failures = report.get("failures", 0)
                    # The generator's sequential warm-up publishes run through the sidecar too:
                    # they are in its CPU, so they are in the divisor.
                    count = report["messages"] + WARMUP_PUBLISHES
                    if n == "on" and not args.control and args.sampling >= 1.0:
                        expected_spans += 2 * (count - failures)
                    r = res[n]
                    r["cpu"].append(cpu * 1e6 / count)
                    r["user"].append(user * 1e6 / count)
                    r["switches"].append(switches / count)
                    r["exporter"].append(exporter * 1e6 / count)
                    r["request_switches"].append(request_switches / count)
                    r["faults"].append(faults / count)
                    if calls[n] is not None:
                        r["syscalls"].append(calls[n] / count)
                    extra = f", exporter threads {exporter * 1e6 / count:.1f}" if n == "on" else ""
                    sc = f", {calls[n] / count:.2f} syscalls" if calls[n] is not None else ""
                    print(f"rate {rate:g} round {run + 1} sidecar {n}: {count} publishes "
                          f"({failures} failed), CPU {cpu:.3f} s (user {user:.2f} s), "
                          f"{cpu * 1e6 / count:.1f} us/publish (user {user * 1e6 / count:.1f}"
                          f"{extra}), {switches / count:.2f} context switches{sc}, "
                          f"{faults / count:.3f} page faults/publish, "
                          f"p50 {report['latency_ms']['p50']:.2f} ms", flush=True)

            for run in range(args.runs):
                if args.order == "together":
                    measure(names, run)
                else:
                    for name in (names if run % 2 == 0 else tuple(reversed(names))):
                        measure((name,), run)

        time.sleep(1.5)  # the exporter's last batch (batch delay 1 s)
        received = sink_spans() - spans_at_start

        def r2(x):
            return round(x, 2)

        def paired(a, b):
            """Median, quartiles, range and a ~95% interval of the median (order statistics)
            of the per-round differences a - b."""
            d = [x - y for x, y in zip(a, b)]
            lo, hi = median_interval(d)
            return {"median": r2(quantile(d, 0.5)), "q1": r2(quantile(d, 0.25)),
                    "q3": r2(quantile(d, 0.75)), "min": r2(min(d)), "max": r2(max(d)),
                    "ci95_lo": r2(lo), "ci95_hi": r2(hi)}

        summary = {"generator": "tracing_overhead", "rates": rates, "sampling": args.sampling,
                   "order": args.order, "control": args.control, "traceparent": args.traceparent,
                   "duration_s": args.duration_s, "rounds": args.runs,
                   "spans_expected": expected_spans, "spans_received": received,
                   "by_rate": {}}
        for rate, res in per_rate.items():
            out = {"publishes_per_run": int(rate * args.duration_s) + WARMUP_PUBLISHES}
            for n in names:
                out[f"cpu_us_per_publish_{n}"] = r2(quantile(res[n]["cpu"], 0.5))
                out[f"user_cpu_us_per_publish_{n}"] = r2(quantile(res[n]["user"], 0.5))
                out[f"switches_per_publish_{n}"] = r2(quantile(res[n]["switches"], 0.5))
                out[f"page_faults_per_publish_{n}"] = round(quantile(res[n]["faults"], 0.5), 3)
                if res[n]["syscalls"]:
                    out[f"syscalls_per_publish_{n}"] = r2(quantile(res[n]["syscalls"], 0.5))
            out["overhead_us"] = paired(res["on"]["cpu"], res["off"]["cpu"])
            out["user_overhead_us"] = paired(res["on"]["user"], res["off"]["user"])
            out["exporter_threads_us_per_publish"] = r2(quantile(res["on"]["exporter"], 0.5))
            out["rest_overhead_us"] = paired(
                [c - e for c, e in zip(res["on"]["cpu"], res["on"]["exporter"])],
                res["off"]["cpu"])
            if len(res["on"]["syscalls"]) == len(res["off"]["syscalls"]) == args.runs:
                out["syscalls_overhead_per_publish"] = paired(res["on"]["syscalls"],
                                                              res["off"]["syscalls"])
            if args.aa:
                out["aa_us"] = paired(res["aa"]["cpu"], res["off"]["cpu"])
                out["adjusted"] = adjusted(res)
            summary["by_rate"][str(int(rate))] = out
        print(json.dumps(summary), flush=True)
        if expected_spans and received < expected_spans:
            sys.exit(f"the sink received {received} spans, {expected_spans} expected: "
                     "the traced side did not export every span")
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
