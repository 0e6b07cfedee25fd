#!/usr/bin/env python3
"""Syscalls, CPU and context switches per service-invocation call in each sidecar.

    bench/http_invoke_probe.py BUILD_DIR [SECONDS]

Starts an `outrider broker`, `bench_http_server` as the app, the app's sidecar (callee) and a
caller sidecar that resolves the app through a resolve file (the `invoke` suite's setup), sends
1 KiB POSTs at 1000 req/s with `bench_invoke` for SECONDS (default 10), and counts
`raw_syscalls:sys_enter`, `task-clock` and `context-switches` in each sidecar with `perf stat`.
PERF=1 also records `perf record -g` profiles to /tmp/http-perf-{caller,callee}.data;
STRACE=1 adds `strace -c -f` tables (strace slows the sidecars a lot: counts only).
Python 3 standard library only; stops everything it started.
"""
import subprocess, sys, time, socket, re, os, tempfile, json, signal
b = os.path.abspath(sys.argv[1]); dur = sys.argv[2] if len(sys.argv) > 2 else "10"
tmp = tempfile.mkdtemp(prefix="httpprobe")
procs = []
def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def wait(port):
    for _ in range(300):
        try: socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError: time.sleep(0.1)
    raise SystemExit("not ready %d" % port)
def spawn(argv, name):
    p = subprocess.Popen(argv, stdout=open(f"{tmp}/{name}.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(p); return p
try:
    bp = free()
    spawn([f"{b}/outrider", "broker", "--listen", f"127.0.0.1:{bp}", "--data-dir", f"{tmp}/data", "--metrics-listen", ""], "broker")
    wait(bp)
    app = spawn([f"{b}/bench/bench_http_server", "--listen", "127.0.0.1:0"], "app")
    for _ in range(100):
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(f"{tmp}/app.log").read())
        if m: break
        time.sleep(0.1)
    ap = int(m.group(1))
    cp = free()
    callee = spawn([f"{b}/outrider", "sidecar", "--app-id", "app", "--dapr-http-port", str(cp), "--serve-metrics", "false", "--broker", f"127.0.0.1:{bp}", "--log-level", "warn", "--app-port", str(ap)], "callee")
    wait(cp)
    open(f"{tmp}/apps.yaml", "w").write(f'apps:\n  app: "127.0.0.1:{cp}"\n')
    kp = free()
    caller = spawn([f"{b}/outrider", "sidecar", "--app-id", "caller", "--dapr-http-port", str(kp), "--serve-metrics", "false", "--broker", f"127.0.0.1:{bp}", "--log-level", "warn", "--resolve-file", f"{tmp}/apps.yaml"], "caller")
    wait(kp)
    url = f"http://127.0.0.1:{kp}/v1.0/invoke/app/method/"
    subprocess.run([f"{b}/bench/bench_invoke", "--url", url, "--rate", "500", "--duration-s", "2", "--size", "1024"], capture_output=True)
    perf = []
    for name, p in (("caller", caller), ("callee", callee)):
        perf.append(subprocess.Popen(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter,task-clock,context-switches", "-p", str(p.pid), "-o", f"{tmp}/perf-{name}.txt"], start_new_session=True))
        if os.environ.get("PERF"): perf.append(subprocess.Popen(["perf", "record", "-g", "-F", "2000", "-p", str(p.pid), "-o", f"/tmp/http-perf-{name}.data"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        if os.environ.get("STRACE"): perf.append(subprocess.Popen(["strace", "-c", "-f", "-p", str(p.pid), "-o", f"{tmp}/strace-{name}.txt"], start_new_session=True))
    time.sleep(0.3)
    done = subprocess.run([f"{b}/bench/bench_invoke", "--url", url, "--rate", "1000", "--duration-s", dur, "--size", "1024"], capture_output=True, text=True)
    for p in perf: p.send_signal(signal.SIGINT)
    for p in perf: p.wait()
    rec = json.loads([l for l in done.stdout.splitlines() if l.startswith("{")][-1])
    n = rec["messages"]
    print("latency", {k: rec["latency_ms"][k] for k in ("p50", "p90", "p99")}, "n", n)
    for name in ("caller", "callee"):
        vals = {}
        for line in open(f"{tmp}/perf-{name}.txt"):
            f = line.strip().split(",")
            if len(f) > 3 and f[0] and f[0][0].isdigit(): vals[f[2]] = float(f[0])
        if os.environ.get("STRACE"): print(open(f"{tmp}/strace-{name}.txt").read())
        print(name, "syscalls/call %.1f" % (vals.get("raw_syscalls:sys_enter", 0) / n), "cpu_us/call %.1f" % (vals.get("task-clock", 0) * 1000 / n), "cs/call %.2f" % (vals.get("context-switches", 0) / n))
finally:
    for p in reversed(procs):
        try: os.killpg(p.pid, signal.SIGTERM)
        except OSError: pass
    for p in procs:
        try: p.wait(10)
        except Exception: os.killpg(p.pid, signal.SIGKILL)
