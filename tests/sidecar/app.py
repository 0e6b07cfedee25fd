#!/usr/bin/env python3
"""A small test app for the sidecar integration tests (standard library only).

    app.py PORT SUBSCRIPTIONS_JSON

GET  /dapr/subscribe    -> the subscriptions given on the command line (Dapr programmatic format)
POST <any other path>   -> records the delivery; the answer depends on the path's last segment:
                           .../fail -> 500 (retry), .../drop -> 404 (drop), .../retry -> {"status":"RETRY"},
                           anything else -> 200 {"status":"SUCCESS"}
GET  /healthz           -> 200, or 503 while unhealthy
POST /control/health    -> body "ok" or "fail" switches /healthz
GET  /deliveries        -> JSON list of {path, headers, body} received so far
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
deliveries = []
state = {"healthy": True}


class handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def reply(self, code, body=b"", content_type="application/json"):
        self.send_response(code)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/dapr/subscribe":
            self.reply(200, json.dumps(self.server.subscriptions).encode())
        elif self.path == "/healthz":
            self.reply(200 if state["healthy"] else 503)
        elif self.path == "/deliveries":
            with lock:
                self.reply(200, json.dumps(deliveries).encode())
        else:
            self.reply(404)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        if self.path == "/control/health":
            state["healthy"] = body.strip() == "ok"
            self.reply(204)
            return
        with lock:
            deliveries.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                               "body": body})
        last = self.path.rstrip("/").rsplit("/", 1)[-1]
        if last == "fail":
            self.reply(500, b'{"error":"failing on purpose"}')
        elif last == "drop":
            self.reply(404)
        elif last == "retry":
            self.reply(200, b'{"status":"RETRY"}')
        else:
            self.reply(200, b'{"status":"SUCCESS"}')


def main():
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.subscriptions = json.loads(sys.argv[2]) if len(sys.argv) > 2 else []
    print(f"test app listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
