#!/usr/bin/env python3
"""A stand-in for the orders service's sidecar in tests/demo/services_process_test.cpp:
answers the Dapr calls orders makes (invoke payments, publish, cancel a
scheduled message) and records them, so the test can check what orders did
without the rest of the system.

  python3 fake_sidecar.py PORT
  GET  /_calls             -> [{method, path, body, traceparent}, ...]
  POST /_config {"refundStatus": 502}   answer refunds with that status
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

calls = []
config = {"refundStatus": 200, "chargeStatus": 200}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if self.path == "/_calls":
            with lock:
                return self.reply(200, calls)
        if self.path == "/_config":
            with lock:
                config.update(json.loads(raw))
            return self.reply(200, config)
        with lock:
            calls.append({"method": self.command, "path": self.path, "body": raw,
                          "traceparent": self.headers.get("traceparent", "")})
            n = len(calls)
            refund_status, charge_status = config["refundStatus"], config["chargeStatus"]
        if self.path == "/v1.0/invoke/payments/method/charge":
            if charge_status != 200:
                return self.reply(charge_status, {"errorCode": "GATEWAY", "message": "injected"})
            return self.reply(200, {"chargeId": f"ch_{n}", "status": "charged"})
        if self.path == "/v1.0/invoke/payments/method/refund":
            if refund_status != 200:
                return self.reply(refund_status, {"errorCode": "GATEWAY", "message": "injected"})
            return self.reply(200, {"refundId": f"re_{n}", "status": "refunded"})
        if self.path.startswith("/v1.0/publish/"):
            return self.reply(204, None, [("outrider-message-id", f"msg-{n}")])
        if self.command == "DELETE" and self.path.startswith("/v1.0-alpha1/outrider/scheduled/"):
            return self.reply(204)
        self.reply(404, {"errorCode": "ERR_ROUTE_NOT_FOUND", "message": self.path})

    do_GET = do_POST = do_DELETE = handle_any


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(f"fake sidecar listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
