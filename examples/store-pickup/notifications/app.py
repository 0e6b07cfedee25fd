#!/usr/bin/env python3
"""notifications: emails the customer about their order (the email is a log
line). Python standard library only; talks to nobody but its sidecar, which
delivers the events it subscribes to (GET /dapr/subscribe).

Idempotent: delivery is at least once, and orders may publish an event again
after a crash, so each email is keyed by (topic, orderId) in SQLite and sent
once. Environment: APP_PORT (6004), DATA_DIR (.data/notifications),
PUBSUB_NAME (pubsub).
"""
import json
import os
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PUBSUB = os.environ.get("PUBSUB_NAME", "pubsub")
DATA_DIR = os.environ.get("DATA_DIR", ".data/notifications")

# topic -> (subject, body) templates
TEMPLATES = {
    "order-placed": ("We got your order", "Thanks {customer}! Your {item} is paid; we'll tell you when it is ready."),
    "order-reserved": ("Ready for pickup", "Your {item} is waiting for you at the store. Please pick it up in time."),
    "order-completed": ("Enjoy your {item}", "You picked up your {item}. Thank you for shopping with us."),
    "reservation-expired": (
        "Reservation expired",
        "You did not pick up your {item} in time; we cancelled the order and refunded {amount}.",
    ),
}

os.makedirs(DATA_DIR, exist_ok=True)
db = sqlite3.connect(os.path.join(DATA_DIR, "notifications.db"), check_same_thread=False, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute(
    "CREATE TABLE IF NOT EXISTS emails (key TEXT PRIMARY KEY, order_id TEXT, topic TEXT, "
    "recipient TEXT, subject TEXT, body TEXT, sent_ms INTEGER)"
)
lock = threading.Lock()


def log(text):
    print(f"notifications: {text}", flush=True)


def notify(topic, order):
    """Sends the email for this event unless it was sent before. True if sent now."""
    subject, body = TEMPLATES[topic]
    fields = {
        "customer": order.get("customer", "customer"),
        "item": order.get("item", "item"),
        "amount": f"{order.get('amountCents', 0) / 100:.2f}",
    }
    key = f"{topic}:{order['orderId']}"
    with lock:
        cur = db.execute(
            "INSERT OR IGNORE INTO emails VALUES (?,?,?,?,?,?,?)",
            (key, order["orderId"], topic, order.get("email", ""), subject.format(**fields),
             body.format(**fields), int(time.time() * 1000)),
        )
        sent = cur.rowcount == 1
    if sent:
        log(f"email to {order.get('email')}: {subject.format(**fields)} (order {order['orderId']})")
    else:
        log(f"duplicate {topic} for {order['orderId']}: already emailed")
    return sent


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/healthz":
            return self.reply(200, {"ok": True})
        if url.path == "/dapr/subscribe":
            return self.reply(200, [
                {"pubsubname": PUBSUB, "topic": t, "route": f"/events/{t}"} for t in TEMPLATES
            ])
        if url.path == "/emails":
            order_id = parse_qs(url.query).get("orderId", [None])[0]
            with lock:
                sql = "SELECT order_id, topic, recipient, subject, body, sent_ms FROM emails"
                rows = (db.execute(sql + " WHERE order_id = ? ORDER BY sent_ms", (order_id,)) if order_id
                        else db.execute(sql + " ORDER BY sent_ms")).fetchall()
            return self.reply(200, {"emails": [
                dict(zip(("orderId", "topic", "to", "subject", "body", "sentMs"), r)) for r in rows
            ]})
        self.reply(404, {"errorCode": "NOT_FOUND", "message": url.path})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        topic = urlparse(self.path).path.removeprefix("/events/")
        if topic not in TEMPLATES:
            return self.reply(404, {"errorCode": "NOT_FOUND", "message": self.path})
        try:
            event = json.loads(raw)
            order = event["data"]
            order["orderId"]
        except (ValueError, KeyError, TypeError):
            log(f"malformed {topic} event dropped")
            return self.reply(200, {"status": "DROP"})
        try:
            notify(topic, order)
        except sqlite3.Error as e:
            log(f"cannot record the email: {e}; retry")
            return self.reply(200, {"status": "RETRY"})
        self.reply(200, {"status": "SUCCESS"})


if __name__ == "__main__":
    port = int(os.environ.get("APP_PORT", "6004"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    log(f"listening on 127.0.0.1:{port} (state {DATA_DIR})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
