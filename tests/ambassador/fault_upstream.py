#!/usr/bin/env python3
"""A fault-injecting HTTP upstream for the ambassador process tests (standard library only).

    fault_upstream.py PORT

Paths (the KEY segments count attempts separately):
  /echo...               200, JSON {method, path, headers, body}; response header X-Upstream: echo
  /flaky/KEY/N           503 for the first N requests with KEY, then 200 "recovered"
  /drop/KEY/N            closes the connection without answering the first N times, then 200
  /stall                 never answers (sleeps 60 s)
  /reset                 headers promising 1000 bytes, 10 bytes, then a TCP reset
  /trickle/MS            200 with 20 chunks of body spread over MS milliseconds
  /status/CODE           answers CODE
  GET /_count/KEY        how many requests KEY (a path prefix) has seen, as text
"""
import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
attempts = {}  # key -> count
seen = []      # paths


def count(key):
    with lock:
        attempts[key] = attempts.get(key, 0) + 1
        return attempts[key]


class handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body=b"", content_type="text/plain", extra=None):
        self.send_response(code)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        length = int(self.headers.get("content-length", "0") or "0")
        body = self.rfile.read(length) if length > 0 else b""
        path = self.path
        if path.startswith("/_count/"):
            key = path[len("/_count/"):]
            with lock:
                n = sum(1 for p in seen if p.startswith("/" + key))
            self.reply(200, str(n).encode())
            return
        with lock:
            seen.append(path)
        parts = path.split("?")[0].strip("/").split("/")
        kind = parts[0]
        if kind == "echo" or kind == "" or path.startswith("/v1.0/invoke/"):
            doc = {"method": self.command, "path": path,
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": body.decode("utf-8", "replace")}
            self.reply(200, json.dumps(doc).encode(), "application/json", {"X-Upstream": "echo"})
        elif kind in ("flaky", "drop") and len(parts) == 3:
            n = count(kind + "/" + parts[1])
            if n <= int(parts[2]):
                if kind == "flaky":
                    self.reply(503, b"try again")
                else:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.reply(200, b"recovered")
        elif kind == "stall":
            time.sleep(60)
            self.close_connection = True
        elif kind == "reset":
            self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789")
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        elif kind == "trickle" and len(parts) == 2:
            total_ms = int(parts[1])
            chunk = b"x" * 10
            self.send_response(200)
            self.send_header("content-length", str(len(chunk) * 20))
            self.end_headers()
            try:
                for _ in range(20):
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    time.sleep(total_ms / 20000.0)
            except OSError:
                self.close_connection = True
        elif kind == "status" and len(parts) == 2:
            self.reply(int(parts[1]), ("status " + parts[1]).encode())
        else:
            self.reply(404, b"no such path")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any


class server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    srv = server(("127.0.0.1", int(sys.argv[1])), handler)
    print("fault upstream listening on %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
