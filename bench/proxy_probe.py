#!/usr/bin/env python3
"""CPU per proxied request and req/s of the sidecar's ambassador against nginx, back to back.

    bench/proxy_probe.py [--rounds 4] [--duration-s 6] [--nginx] BUILD_DIR [BUILD_DIR...]
    bench/proxy_probe.py --callgrind [--duration-s 20] BUILD_DIR [BUILD_DIR...]

The `proxy` suite's setup (docs/benchmarks.md): one nginx upstream (bench/peers/nginx.conf), one
`outrider broker` (the sidecars' pub/sub component only), and for each BUILD_DIR a sidecar with
`--io-threads 2` and an HTTPEndpoint `upstream` whose baseUrl is the nginx upstream; with --nginx
also nginx as a reverse proxy (bench/peers/nginx-proxy.conf). Every round runs
`wrk -t2 -c50 -dS --latency -H 'dapr-app-id: upstream'` against each system in turn (the order
rotates every round) and prints req/s, p50/p99 and the system's CPU per request (on-CPU time of
every thread of its processes from /proc/PID/task/*/schedstat, in ns, over the wrk run), split
into user and system time from /proc/PID/stat (clock ticks), and the CPU per request of wrk (its
rusage) and of the nginx upstream (schedstat), which the proxy's behaviour also moves, and the
share of the machine's cores left idle during the run (/proc/stat).
--io-threads N: the sidecars' I/O threads (default 2, as the `proxy` suite); a BUILD_DIR written
`DIR@N` runs its sidecar with N I/O threads instead (`B@1 B@2` compares thread counts of one
build in the same rounds).

--callgrind runs each build's sidecar (--io-threads 1) under `valgrind --tool=callgrind`, warms
it up, zeroes the counters, runs `wrk -t1 -c4 -dS` and prints instructions per request
(the callgrind output stays in /tmp/proxy-probe-callgrind-<n>.out for callgrind_annotate):
repeatable whatever the machine's load.

Python 3 standard library only; stops everything it started (process groups, by id).
"""
import argparse
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / "peers"
procs = []
SYSCALLS = ["raw_syscalls:sys_enter", "syscalls:sys_enter_recvfrom", "syscalls:sys_enter_sendto",
            "syscalls:sys_enter_sendmsg", "syscalls:sys_enter_writev",
            "syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_epoll_ctl",
            "syscalls:sys_enter_timerfd_settime", "syscalls:sys_enter_futex",
            "syscalls:sys_enter_write", "syscalls:sys_enter_read", "context-switches",
            "cpu-migrations"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_tcp(port, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def spawn(argv, log):
    p = subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                         start_new_session=True)
    procs.append(p)
    return p


def nginx(tmp, name, conf, upstream_port=None):
    d = Path(tmp) / name
    d.mkdir()
    port = free_port()
    text = (PEERS / conf).read_text().replace("${PORT}", str(port)).replace("${DIR}", str(d))
    if upstream_port:
        text = text.replace("${UPSTREAM_PORT}", str(upstream_port))
    (d / "nginx.conf").write_text(text)
    p = spawn(["nginx", "-c", str(d / "nginx.conf"), "-p", str(d), "-e", "stderr"], d / "log")
    wait_tcp(port)
    return port, p


def pids_of(pgid):
    out = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and os.getpgid(int(pid)) == pgid:
                out.append(pid)
        except OSError:
            pass
    return out


def cpu_ns(pgid):
    """On-CPU ns of every thread of every process in process group `pgid`."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            for tid in os.listdir(f"/proc/{pid}/task"):
                total += int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
        except (OSError, ValueError):
            pass
    return total


def user_sys_ticks(pgid):
    """(user, system) clock ticks of every process in process group `pgid` (/proc/PID/stat)."""
    user = system = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except (OSError, ValueError, IndexError):
            pass
    return user, system


def machine_ticks():
    """(busy, total) clock ticks of all CPUs (/proc/stat): the share of the cores left idle."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + f[4]  # idle + iowait
    return sum(f) - idle, sum(f)


def ms(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port, seconds, threads=2, connections=50):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-H", "dapr-app-id: upstream", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: ms(re.search(rf"^\s+{p}%\s+(\S+)", out, re.M).group(1)) for p in ("50", "99")}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return requests, rps, lat, int(bad.group(1)) if bad else 0


def sidecar(build, tmp, name, broker_port, resources, threads, wrapper=()):
    port = free_port()
    argv = list(wrapper) + [f"{build}/outrider", "sidecar", "--app-id", "bench",
                            "--dapr-http-port", str(port), "--serve-metrics", "false",
                            "--broker", f"127.0.0.1:{broker_port}", "--log-level", "warn",
                            "--resources-path", str(resources), "--io-threads", str(threads)]
    p = spawn(argv, Path(tmp) / f"{name}.log")
    wait_tcp(port, 300)
    return port, p


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("builds", nargs="+")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration-s", type=int, default=6)
    ap.add_argument("--nginx", action="store_true", help="also nginx as the proxy")
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--syscalls", action="store_true",
                    help="also count syscalls per request (perf stat -p on its processes)")
    ap.add_argument("--io-threads", type=int, default=2,
                    help="the sidecars' --io-threads (the proxy suite uses 2)")
    args = ap.parse_args()
    # "DIR@N": that sidecar's --io-threads; the name printed keeps the suffix.
    specs = []
    for b in args.builds:
        path, _, threads = b.partition("@")
        specs.append((os.path.abspath(path), int(threads) if threads else args.io_threads,
                      os.path.abspath(path) + (f"@{threads}" if threads else "")))
    builds = [path for path, _, _ in specs]
    tmp = tempfile.mkdtemp(prefix="proxyprobe")
    try:
        up_port, up = nginx(tmp, "upstream", "nginx.conf")
        resources = Path(tmp) / "resources"
        resources.mkdir()
        (resources / "upstream.yaml").write_text(
            "apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: upstream\n"
            f"spec:\n  baseUrl: http://127.0.0.1:{up_port}\n")
        broker_port = free_port()
        spawn([f"{builds[0]}/outrider", "broker", "--listen", f"127.0.0.1:{broker_port}",
               "--data-dir", f"{tmp}/data", "--metrics-listen", ""], Path(tmp) / "broker.log")
        wait_tcp(broker_port)
        if args.callgrind:
            for i, build in enumerate(builds):
                out = f"/tmp/proxy-probe-callgrind-{i}.out"
                for old in Path("/tmp").glob(f"proxy-probe-callgrind-{i}.out*"):
                    old.unlink()
                port, p = sidecar(build, tmp, f"cg{i}", broker_port, resources, 1,
                                  ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"])
                wrk(port, 5, 1, 4)  # warm-up: pools, caches, lazy initialisation
                subprocess.run(["callgrind_control", "-z", str(p.pid)], capture_output=True)
                requests, rps, lat, bad = wrk(port, args.duration_s, 1, 4)
                subprocess.run(["callgrind_control", "-d", str(p.pid)], capture_output=True)
                # The dump of the measured interval is the newest <out>.<n> file.
                parts = sorted(Path("/tmp").glob(f"proxy-probe-callgrind-{i}.out.*"),
                               key=lambda f: f.stat().st_mtime)
                text = parts[-1].read_text() if parts else ""
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(60)
                total = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
                ir = int(total.group(1)) if total else 0
                print(f"{build}: {requests} requests ({bad} non-2xx), {ir} Ir after zeroing, "
                      f"{ir / max(requests, 1):.0f} Ir/request ({parts[-1] if parts else '-'})",
                      flush=True)
            return
        systems = []
        for i, (build, threads, name) in enumerate(specs):
            port, p = sidecar(build, tmp, f"sidecar{i}", broker_port, resources, threads)
            systems.append((name, port, p.pid))
        if args.nginx:
            port, p = nginx(tmp, "proxy", "nginx-proxy.conf", up_port)
            systems.append(("nginx-proxy", port, p.pid))
        for _, port, _ in systems:
            wrk(port, 1)  # warm-up
        tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
        print("round system req/s p50_ms p99_ms cpu_us/req user_us/req sys_us/req non2xx load1 "
              "wrk_us/req upstream_us/req idle%", flush=True)
        for r in range(args.rounds):
            order = systems[r % len(systems):] + systems[:r % len(systems)]
            for name, port, pgid in order:
                perf = None
                if args.syscalls:
                    out = Path(tmp) / "perf.txt"
                    perf = subprocess.Popen(["perf", "stat", "-x,", "-o", str(out), "-p",
                                             ",".join(pids_of(pgid)),
                                             "-e", ",".join(SYSCALLS)], start_new_session=True)
                    time.sleep(0.3)
                before = cpu_ns(pgid)
                ticks_before = user_sys_ticks(pgid)
                up_before = cpu_ns(up.pid)
                child = resource.getrusage(resource.RUSAGE_CHILDREN)
                wrk_before = child.ru_utime + child.ru_stime
                machine_before = machine_ticks()
                requests, rps, lat, bad = wrk(port, args.duration_s)
                used = cpu_ns(pgid) - before
                up_used = cpu_ns(up.pid) - up_before
                busy, total = [b - a for a, b in zip(machine_before, machine_ticks())]
                child = resource.getrusage(resource.RUSAGE_CHILDREN)
                wrk_used = child.ru_utime + child.ru_stime - wrk_before
                ticks = [b - a for a, b in zip(ticks_before, user_sys_ticks(pgid))]
                load = os.getloadavg()[0]
                per = max(requests, 1)
                line = (f"{r + 1} {name} {rps:.0f} {lat['50']:.2f} {lat['99']:.2f} "
                        f"{used / 1000 / per:.1f} {ticks[0] * tick_us / per:.1f} "
                        f"{ticks[1] * tick_us / per:.1f} {bad} {load:.1f} "
                        f"{wrk_used * 1e6 / per:.1f} {up_used / 1000 / per:.1f} "
                        f"{100 * (1 - busy / max(total, 1)):.0f}")
                if perf:
                    perf.send_signal(signal.SIGINT)
                    perf.wait()
                    counts = {}
                    for row in out.read_text().splitlines():
                        f = row.split(",")
                        if len(f) > 2 and f[0].strip().isdigit():
                            counts[f[2].split(":")[-1].replace("sys_enter_", "")] = int(f[0])
                    line += " " + " ".join(f"{k}={v / max(requests, 1):.2f}"
                                           for k, v in counts.items() if v)
                print(line, flush=True)
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
