#!/usr/bin/env python3
"""Where a publish through the sidecar spends its time, hop by hop, from syscall timestamps.

    bench/sidecar_hops.py [--rate 500] [--record-s 1.5] BUILD_DIR [BUILD_DIR...]

For each BUILD_DIR in turn: bench/run's sidecar-publish setup (an `outrider broker`, a
`bench_http_server` app, `outrider sidecar` delivering topic `bench` to it), then
`bench_sidecar_publish --via sidecar --rate R --duration-s 4` while `perf record -e
raw_syscalls:sys_enter,raw_syscalls:sys_exit -p SIDECAR,GENERATOR,BROKER` records --record-s of
it (1.5 s in). Every publish is followed through the sidecar's I/O thread (the thread reading
request-sized messages) by descriptor and size: the request read from an HTTP connection, the
PUBLISH (> 1000 bytes) sent on the broker connection, the CONFIRM (< 200 bytes) read from it and
the response sent on the HTTP connection; the generator's and the broker's sends and reads are
matched by time. Prints p50/p90/p99 in µs of each hop and the epoll_wait calls per publish on the
I/O thread. Needs perf (root, or perf_event_paranoid <= 1). Syscall tracing costs 1-2 µs per
syscall; compare builds in the same minutes (docs/benchmarks.md, issue 4 session 8).
"""
import argparse
import bisect
import collections
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEND = {1, 20, 44, 46}  # write, writev, sendto, sendmsg
RECV = {0, 19, 45, 47}  # read, readv, recvfrom, recvmsg
EPOLL = {7, 232, 281}  # poll, epoll_wait, epoll_pwait
REQUEST = range(1100, 1401)  # a 1 KiB publish request, head included


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"port {port} not ready")


def record(build, rate, record_s, out):
    build = Path(build)
    work = Path(tempfile.mkdtemp(prefix="outrider-hops-"))
    procs = []
    try:
        bport = free_port()
        broker = subprocess.Popen([build / "outrider", "broker", "--listen", f"127.0.0.1:{bport}",
                                   "--data-dir", work / "data", "--metrics-listen", ""],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(broker)
        app = subprocess.Popen([build / "bench" / "bench_http_server", "--listen", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, text=True)
        procs.append(app)
        aport = int(re.search(r":(\d+)", app.stdout.readline()).group(1))
        wait_port(bport, broker)
        (work / "sidecar.yaml").write_text(
            "subscriptions:\n  - pubsubname: pubsub\n    topic: bench\n    route: /\n")
        sport = free_port()
        sidecar = subprocess.Popen([build / "outrider", "sidecar", "--app-id", "bench",
                                    "--dapr-http-port", str(sport), "--serve-metrics", "false",
                                    "--broker", f"127.0.0.1:{bport}", "--log-level", "warn",
                                    "--app-port", str(aport), "-c", work / "sidecar.yaml"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(sidecar)
        wait_port(sport, sidecar)
        gen = subprocess.Popen([build / "bench" / "bench_sidecar_publish", "--via", "sidecar",
                                "--port", str(sport), "--rate", str(rate), "--duration-s", "4",
                                "--topic", "bench"], stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)
        subprocess.run(["perf", "record", "-q", "-o", out, "-e",
                        "raw_syscalls:sys_enter,raw_syscalls:sys_exit", "-p",
                        f"{sidecar.pid},{gen.pid},{broker.pid}", "--", "sleep", str(record_s)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        gen_out = gen.communicate()[0]
        return {"sidecar": sidecar.pid, "gen": gen.pid, "broker": broker.pid}, gen_out
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        subprocess.run(["rm", "-rf", str(work)])


def analyse(data, pids):
    text = subprocess.run(["perf", "script", "-i", data, "-F", "pid,tid,time,event,trace"],
                          capture_output=True, text=True).stdout
    rx = re.compile(r"^\s*(\d+)/(\d+)\s+([\d.]+):\s+raw_syscalls:sys_(enter|exit):\s+NR (\d+) "
                    r"(?:\(([0-9a-f]+)|= (-?\d+))")
    pending, calls = {}, []  # calls: (t_enter, t_exit, pid, tid, nr, fd, ret)
    for line in text.splitlines():
        m = rx.match(line)
        if not m:
            continue
        pid, tid, t, kind, nr = int(m[1]), int(m[2]), float(m[3]), m[4], int(m[5])
        if kind == "enter":
            pending[tid] = (t, nr, int(m[6], 16))
        elif tid in pending and pending[tid][1] == nr:
            te, _, fd = pending.pop(tid)
            calls.append((te, t, pid, tid, nr, fd, int(m[7])))
    calls.sort()
    sc, gen, br = pids["sidecar"], pids["gen"], pids["broker"]
    by_tid = collections.Counter(c[3] for c in calls
                                 if c[2] == sc and c[4] in RECV and c[6] in REQUEST)
    if not by_tid:
        return None
    io_tid = by_tid.most_common(1)[0][0]
    io = [c for c in calls if c[3] == io_tid]
    http_fds = {c[5] for c in io if c[4] in RECV and c[6] in REQUEST}
    pub_fds = collections.Counter(c[5] for c in io
                                  if c[4] in SEND and c[5] not in http_fds and c[6] > 1000)
    if not pub_fds:
        return None
    bfd = pub_fds.most_common(1)[0][0]
    gsend = [c[0] for c in calls if c[2] == gen and c[4] in SEND and c[6] in REQUEST]
    grecv = [c[1] for c in calls if c[2] == gen and c[4] in RECV and c[6] > 0]
    bsend = [c[0] for c in calls if c[2] == br and c[4] in SEND and c[6] > 0]
    brecv = [c[1] for c in calls if c[2] == br and c[4] in RECV and c[6] > 1000]
    hops = collections.defaultdict(list)
    cur = None
    for i, (te, tx, _, _, nr, fd, ret) in enumerate(io):
        if nr in RECV and fd in http_fds and ret in REQUEST:
            j = i - 1
            while j >= 0 and io[j][4] not in EPOLL:
                j -= 1
            k = bisect.bisect_right(gsend, te) - 1
            if j >= 0 and k >= 0:
                hops["1 generator sends the request -> sidecar's epoll_wait returns"].append(
                    io[j][1] - gsend[k])
                hops["2 epoll_wait returned -> request read"].append(tx - io[j][1])
            cur = {"read": tx}
        elif cur and "pub" not in cur and nr in SEND and fd == bfd and ret > 1000:
            cur["pub"] = te
            hops["3 request read -> PUBLISH sent"].append(te - cur["read"])
            k = bisect.bisect_left(brecv, te)
            if k < len(brecv):
                hops["4 PUBLISH sent -> the broker has read it"].append(brecv[k] - te)
        elif cur and "pub" in cur and "conf" not in cur and nr in RECV and fd == bfd and 0 < ret < 200:
            cur["conf"] = tx
            k = bisect.bisect_right(bsend, te) - 1
            if k >= 0:
                hops["5 broker sends CONFIRM -> the sidecar has read it"].append(tx - bsend[k])
        elif cur and "conf" in cur and nr in SEND and fd in http_fds:
            hops["6 CONFIRM read -> response sent"].append(te - cur["conf"])
            k = bisect.bisect_left(grecv, te)
            if k < len(grecv):
                hops["7 response sent -> the generator has read it"].append(grecv[k] - te)
            hops["epoll_wait calls per publish"].append(
                sum(1 for d in io if cur["read"] <= d[0] <= te and d[4] in EPOLL))
            cur = None
    return hops


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builds", nargs="+")
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--record-s", type=float, default=1.5)
    args = ap.parse_args()
    for build in args.builds:
        with tempfile.TemporaryDirectory(prefix="outrider-hops-perf-") as tmp:
            data = os.path.join(tmp, "perf.data")
            stamp = time.strftime("%H:%M:%S", time.gmtime())
            load = open("/proc/loadavg").read().split()[0]
            pids, _ = record(build, args.rate, args.record_s, data)
            hops = analyse(data, pids)
        print(f"== {build} ({stamp} UTC, load {load}, {args.rate} publishes/s)")
        if not hops:
            print("   no publish found on the sidecar's I/O thread")
            continue
        for name in sorted(hops):
            v = sorted(hops[name])
            q = lambda p: v[min(len(v) - 1, int(p * len(v)))]
            if name.startswith("epoll"):
                print(f"   {name}: {sum(v) / len(v):.2f} (n={len(v)})")
            else:
                print(f"   {name}: p50 {q(0.5) * 1e6:.0f} µs, p90 {q(0.9) * 1e6:.0f}, "
                      f"p99 {q(0.99) * 1e6:.0f} (n={len(v)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
