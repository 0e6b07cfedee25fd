#!/usr/bin/env python3
"""Tracing's cost per publish in instructions and cache lines, under callgrind (docs/benchmarks.md, tracing).

    bench/tracing_callgrind.py sidecar [--build-dir build/release] [--publishes 1000] [--rate 200]
                               [--rounds 3] [--control] [--traceparent] [--sampling 1.0]
                               [--no-cache-sim]
    bench/tracing_callgrind.py path [--build-dir build/release] [--iterations 2000]

CPU time on a shared 2-core machine cannot resolve 2 us per publish (the A/A control of
bench/tracing_overhead.py spreads over +-10 us), and this VM has no hardware counters (`perf stat
-e instructions` is "not supported"). Valgrind's callgrind counts the instructions a process
executes (Ir) whatever the load, and simulates its caches (--cache-sim=yes: misses in a first
level I1/D1 and a last level LL), so both are repeatable to a fraction of a percent.

`sidecar`: the whole sidecar. Starts a private `outrider broker` and a trace sink (`bench_tracing
--mode sink`) natively, and two publish-only sidecars under callgrind (`--separate-threads=yes`):
one with tracing off, one exporting every span (`--trace-sampling`, OTLP/HTTP protobuf to the
sink; `--control`: tracing off on both, the A/A check). A warm-up of --warmup publishes, then per
round: `callgrind_control --zero`, --publishes publishes at --rate per s with
`bench_sidecar_publish` (both sidecars at once: counts do not depend on the load), a pause for the
exporter's last batch (its batch delay is 1 s), `callgrind_control --dump`. The divisor is the
number of calls to the sidecar's publish handler in the round (the generator's 200 warm-up
publishes included). Each thread's counts
come from its own file; the exporter's threads (the batching thread and the senders) are those
that ran `tracing::exporter::run` / `::sender`, the request path is every other thread. Reports
per publish, per round and as medians: instructions (Ir) of each sidecar, on - off in all, of
the request path and of the exporter threads, and the simulated cache misses (I1+D1 misses:
lines the publish had to fetch into the first level; LL misses: beyond the last level). Note: the
exporter's per-batch cost (an HTTP request per batch) is spread over rate x 2 spans per batch,
so it is larger per publish at lower rates; the real sidecar at 1000/s sends batches 5x larger
than at the default 200/s here.

`path`: the request path alone, in process (`bench_tracing_path`, whose `handle_publish` is the
sidecar's per-publish tracing work through the same functions, not inlined). Runs the hot
`publish/tracing:{0,1}/traceparent:1` and `publish_cold/tracing:{0,1}` (before each publish
--cold-bytes of other data are written, 4x the simulated LL, and 64 KiB of other code runs, 2x the
simulated I1) under callgrind and reads the
inclusive cost of `handle_publish` per call on the benchmark's thread, and the exporter thread's
counts per publish. In the cold runs every line a publish touches misses the simulated LL, so
ILmr + DLmr + DLmw per publish is its footprint in cache lines (code + data), the figure that
costs most on a busy machine (bench_tracing_path's publish_cold: +4.5-4.9 us there against
+1.8-2.2 us hot).

Simulated caches (this VM's per-core sizes, lscpu): I1 32 KiB 8-way, D1 48 KiB 12-way, LL = the
per-core L2, 1 MiB 16-way, 64-byte lines. Callgrind runs one thread at a time and simulates one
cache for all, so misses from lines moving between cores (a record written by the request
thread and recycled by the exporter's) are not modelled; nor are other processes.
Python 3 standard library only; needs valgrind (callgrind_control talks to it through vgdb).
"""
import argparse
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracing_overhead import free_port, start  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHES = ["--I1=32768,8,64", "--D1=49152,12,64", "--LL=1048576,16,64"]
LL_BYTES = 1048576
# The sidecar's publish handler (once per publish) and bench_tracing_path's publish.
PUBLISH_HANDLER = "sidecar::impl::publish(outrider::http::request&&, outrider::http::responder)"
PATH_PUBLISH = ("handle_publish(outrider::http::request&&, outrider::tracing::tracer const*, "
                "outrider::sidecar::publish_metadata const&)")
EXPORTER_FUNCTIONS = ("tracing::exporter::run()", "tracing::exporter::sender()")


class profile:
    """One callgrind output file: events, totals, functions seen, inclusive costs of some."""

    def __init__(self, path, inclusive_of=()):
        self.events = []
        self.totals = {}
        self.functions = set()
        self.calls = {name: 0 for name in inclusive_of}
        self.inclusive = {name: {} for name in inclusive_of}
        names = {}

        def resolve(text):
            text = text.strip()
            m = re.match(r"\((\d+)\)\s*(.*)", text)
            if not m:
                return text
            if m.group(2):
                names[m.group(1)] = m.group(2)
            return names.get(m.group(1), "")

        def matching(fn):  # the function itself, not lambdas or handlers named after it
            return [n for n in inclusive_of if fn == n or fn.endswith("::" + n)]

        positions = 1
        fn = cfn = ""
        pending = None  # calls count of a call line; its cost line follows
        with open(path, errors="replace") as f:
            for line in f:
                if not line or line[0] == "\n":
                    continue
                c = line[0]
                if c.isdigit() or c in "+-*":
                    if pending is None:
                        continue
                    fields = line.split()[positions:]
                    if fn != cfn:
                        for n in matching(cfn):
                            self.calls[n] += pending
                            for e, v in zip(self.events, fields):
                                self.inclusive[n][e] = self.inclusive[n].get(e, 0) + int(v)
                    pending = None
                elif line.startswith("fn="):
                    fn = resolve(line[3:])
                    self.functions.add(fn)
                elif line.startswith("cfn="):
                    cfn = resolve(line[4:])
                elif line.startswith("calls="):
                    pending = int(line[6:].split()[0])
                elif line.startswith("events:"):
                    self.events = line.split()[1:]
                elif line.startswith("positions:"):
                    positions = len(line.split()) - 1
                elif line.startswith("totals:") or line.startswith("summary:"):
                    values = [int(v) for v in line.split()[1:]]
                    self.totals = dict(zip(self.events, values))

    def is_exporter(self):
        return any(e in fn for fn in self.functions for e in EXPORTER_FUNCTIONS)


def add(into, counts, scale=1.0):
    for k, v in counts.items():
        into[k] = into.get(k, 0) + v * scale
    return into


def figures(counts, per):
    """The reported figures of summed event counts, per `per` publishes."""
    def get(*names):
        return sum(counts.get(n, 0) for n in names) / per
    out = {"ir": get("Ir")}
    if "I1mr" in counts or "D1mr" in counts:
        out["l1_misses"] = get("I1mr", "D1mr", "D1mw")
        out["ll_misses"] = get("ILmr", "DLmr", "DLmw")
        out["i1_misses"] = get("I1mr")
        out["d1_misses"] = get("D1mr", "D1mw")
    return out


def median(xs):
    xs = sorted(xs)
    if not xs:
        return 0.0
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def valgrind(out_file, cache_sim):
    argv = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
            f"--callgrind-out-file={out_file}", f"--log-file={out_file}.log"]
    if cache_sim:
        argv += ["--cache-sim=yes"] + CACHES
    return argv


def r1(x):
    return round(x, 1)


def run_sidecar(args):
    build = Path(args.build_dir)
    outrider = str(build / "outrider")
    procs = []
    tmp = tempfile.TemporaryDirectory(prefix="outrider-tracing-callgrind-")
    work = Path(args.keep) if args.keep else Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    try:
        def log(name):
            return open(work / f"{name}.log", "w+")
        broker_port = free_port()
        p, _ = start([outrider, "broker", "--listen", f"127.0.0.1:{broker_port}", "--data-dir",
                      f"{tmp.name}/broker", "--metrics-listen", ""],
                     r"outrider broker listening on", log("broker"))
        procs.append(p)
        sink_port = free_port()
        p, _ = start([str(build / "bench" / "bench_tracing"), "--mode", "sink", "--port",
                      str(sink_port)], r"sink listening", log("sink"))
        procs.append(p)
        traced = ["--trace-endpoint", f"http://127.0.0.1:{sink_port}/v1/traces",
                  "--trace-sampling", str(args.sampling)]
        sidecars = {}
        for name, extra in (("off", []), ("on", [] if args.control else traced)):
            out = work / f"callgrind.{name}"
            argv = valgrind(out, not args.no_cache_sim) + [
                outrider, "sidecar", "--app-id", f"bench-{name}", "--app-port", "0",
                "--dapr-http-port", "0", "--metrics-port", "0", "--io-threads", "1",
                "--broker", f"127.0.0.1:{broker_port}"] + extra
            p = subprocess.Popen(argv, stdout=log(f"sidecar-{name}"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
            procs.append(p)
            sidecars[name] = [p, None, out]
        deadline = time.time() + 180
        for name, s in sidecars.items():
            while s[1] is None:
                text = (work / f"sidecar-{name}.log").read_text()
                m = re.search(r"outrider sidecar listening on 127\.0\.0\.1:(\d+)", text)
                if m:
                    s[1] = int(m.group(1))
                elif s[0].poll() is not None or time.time() > deadline:
                    sys.exit(f"sidecar {name} did not start under valgrind: {text[-2000:]}")
                else:
                    time.sleep(0.2)

        def drive(count):
            """`count` publishes into each sidecar at once; the generators' message counts."""
            duration = count / args.rate
            gens = {n: subprocess.Popen(
                [str(build / "bench" / "bench_sidecar_publish"), "--via", "sidecar", "--port",
                 str(s[1]), "--rate", str(args.rate), "--duration-s", str(duration),
                 "--topic", f"bench-{n}"]
                + (["--traceparent", "true"] if args.traceparent else []), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True) for n, s in sidecars.items()}
            counts = {}
            for n, g in gens.items():
                stdout, stderr = g.communicate()
                if '"generator"' not in stdout:
                    sys.exit(f"bench_sidecar_publish failed ({n}): {stderr[-2000:]}")
                report = json.loads(stdout.strip().splitlines()[-1])
                if report.get("failures", 0):
                    sys.exit(f"{n}: {report['failures']} publishes failed")
                counts[n] = report["messages"]
            return counts

        def control(what, name):
            subprocess.run(["callgrind_control", what, str(sidecars[name][0].pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

        drive(args.warmup)
        rows = []
        for rnd in range(1, args.rounds + 1):
            time.sleep(args.pause_s)  # the warm-up's (last round's) last batch goes out
            for n in sidecars:
                control("--zero", n)
            counts = drive(args.publishes)
            time.sleep(args.pause_s)  # this round's last batch goes out
            row = {}
            for n, s in sidecars.items():
                control(f"--dump=round{rnd}", n)
                files = sorted(glob.glob(f"{s[2]}.{rnd}-*"))
                if not files:
                    sys.exit(f"no callgrind dump for round {rnd} of {n} in {work}")
                request, exporter, calls = {}, {}, 0
                for f in files:
                    prof = profile(f, inclusive_of=(PUBLISH_HANDLER,))
                    calls += prof.calls[PUBLISH_HANDLER]
                    add(exporter if prof.is_exporter() else request, prof.totals)
                # The publishes the sidecar handled in the round: the generator's own
                # warm-up ones (not in its count) included.
                publishes = calls or counts[n]
                total = add(dict(request), exporter)
                row[n] = {"publishes": publishes, "all": figures(total, publishes),
                          "request_path": figures(request, publishes),
                          "exporter": figures(exporter, publishes)}
            diff = {part: {k: row["on"][part][k] - row["off"][part].get(k, 0)
                           for k in row["on"][part]}
                    for part in ("all", "request_path", "exporter")}
            row["on_minus_off"] = diff
            rows.append(row)
            a = diff["all"]
            print(f"round {rnd} ({row['off']['publishes']}/{row['on']['publishes']} publishes): "
                  f"Ir/publish off {row['off']['all']['ir']:.0f}, on "
                  f"{row['on']['all']['ir']:.0f}: +{a['ir']:.0f} (request path "
                  f"+{diff['request_path']['ir']:.0f}, exporter threads "
                  f"+{diff['exporter']['ir']:.0f})"
                  + (f"; L1 misses +{a['l1_misses']:.1f}, LL misses +{a['ll_misses']:.1f}"
                     if "l1_misses" in a else ""), flush=True)

        def med(side, part, key):
            return r1(median([r[side][part].get(key, 0) for r in rows]))
        summary = {"generator": "tracing_callgrind", "mode": "sidecar", "rate": args.rate,
                   "publishes_per_round": args.publishes, "rounds": args.rounds,
                   "sampling": args.sampling, "control": args.control,
                   "traceparent": args.traceparent}
        keys = rows[0]["off"]["all"].keys()
        for key in keys:
            summary[f"{key}_per_publish_off"] = med("off", "all", key)
            summary[f"{key}_per_publish_on"] = med("on", "all", key)
            summary[f"{key}_on_minus_off"] = med("on_minus_off", "all", key)
            summary[f"{key}_on_minus_off_request_path"] = med("on_minus_off", "request_path", key)
            summary[f"{key}_on_minus_off_exporter"] = med("on_minus_off", "exporter", key)
        diffs = [r["on_minus_off"]["all"]["ir"] for r in rows]
        summary["ir_on_minus_off_min"] = r1(min(diffs))
        summary["ir_on_minus_off_max"] = r1(max(diffs))
        print(json.dumps(summary), flush=True)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        tmp.cleanup()


def run_path(args):
    bench = Path(args.build_dir) / "bench" / "bench_tracing_path"
    tmp = tempfile.TemporaryDirectory(prefix="outrider-tracing-callgrind-")
    work = Path(args.keep) if args.keep else Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    summary = {"generator": "tracing_callgrind", "mode": "path"}
    try:
        variants = [("hot", "tracing:0", "^publish/tracing:0/traceparent:1"),
                    ("hot", "tracing:1", "^publish/tracing:1/traceparent:1"),
                    ("cold", "tracing:0", "^publish_cold/tracing:0"),
                    ("cold", "tracing:1", "^publish_cold/tracing:1")]
        results = {}
        for kind, mode, pattern in variants:
            out = work / f"callgrind.{kind}.{mode.replace(':', '')}"
            argv = valgrind(out, True) + [
                str(bench), f"--benchmark_filter={pattern}", "--benchmark_repetitions=1",
                "--benchmark_enable_random_interleaving=false",
                f"--benchmark_min_time={args.min_time}",
                f"--cold-bytes={4 * LL_BYTES}", f"--cold-iterations={args.iterations}"]
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            files = sorted(glob.glob(f"{out}-*"))
            target = PATH_PUBLISH
            request, exporter, calls = {}, {}, 0
            for f in files:
                prof = profile(f, inclusive_of=(target,))
                if prof.calls[target]:
                    calls += prof.calls[target]
                    add(request, prof.inclusive[target])
                elif prof.is_exporter():
                    add(exporter, prof.totals)
            if not calls:
                sys.exit(f"no calls to {target} in {out}-*")
            results[(kind, mode)] = {"publishes": calls, "request_path": figures(request, calls),
                                     "exporter": figures(exporter, calls)}
            rp = results[(kind, mode)]["request_path"]
            print(f"{kind} {mode}: {calls} publishes, request path Ir {rp['ir']:.0f}, "
                  f"L1 misses {rp['l1_misses']:.1f}, LL misses {rp['ll_misses']:.1f}; "
                  f"exporter thread Ir {results[(kind, mode)]['exporter']['ir']:.0f} per publish",
                  flush=True)
        for kind in ("hot", "cold"):
            off, on = results[(kind, "tracing:0")], results[(kind, "tracing:1")]
            for part in ("request_path", "exporter"):
                for key, v in on[part].items():
                    summary[f"{kind}_{part}_{key}_off"] = r1(off[part].get(key, 0))
                    summary[f"{kind}_{part}_{key}_on"] = r1(v)
                    summary[f"{kind}_{part}_{key}_on_minus_off"] = r1(v - off[part].get(key, 0))
        print(json.dumps(summary), flush=True)
    finally:
        tmp.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("sidecar", help="two real sidecars under callgrind, tracing off vs on")
    s.add_argument("--build-dir", default=str(ROOT / "build" / "release"))
    s.add_argument("--publishes", type=int, default=1000, help="per round and sidecar")
    s.add_argument("--warmup", type=int, default=200)
    s.add_argument("--rate", type=float, default=200, help="publishes per s")
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--pause-s", type=float, default=3, help="for the exporter's last batch")
    s.add_argument("--sampling", type=float, default=1.0)
    s.add_argument("--control", action="store_true", help="A/A: tracing off on both sidecars")
    s.add_argument("--traceparent", action="store_true",
                   help="each publish carries a W3C traceparent (as from an instrumented app): "
                        "both sidecars propagate it, the traced one records spans under it")
    s.add_argument("--no-cache-sim", action="store_true", help="instructions only (faster)")
    s.add_argument("--keep", help="keep the callgrind files in this directory")
    p = sub.add_parser("path", help="bench_tracing_path's handle_publish under callgrind")
    p.add_argument("--build-dir", default=str(ROOT / "build" / "release"))
    p.add_argument("--iterations", type=int, default=300, help="cold publishes per side")
    p.add_argument("--min-time", type=float, default=0.5, help="hot runs' CPU seconds")
    p.add_argument("--keep", help="keep the callgrind files in this directory")
    args = ap.parse_args()
    return run_sidecar(args) if args.what == "sidecar" else run_path(args)


if __name__ == "__main__":
    sys.exit(main())
