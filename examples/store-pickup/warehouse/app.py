#!/usr/bin/env python3
"""warehouse: the shelves of the store. A reserved item is held behind the
counter; picked up, it is gone; if the reservation expires, the item goes back
on the shelf. Python standard library only; talks to nobody but its sidecar,
which delivers the events it subscribes to (GET /dapr/subscribe).

Idempotent and order-insensitive: each order's item has one row whose state
only moves forward (held -> picked | returned), so a duplicate or late event
changes nothing. Environment: APP_PORT (6005), DATA_DIR (.data/warehouse),
PUBSUB_NAME (pubsub), WAREHOUSE_STOCK ("lamp=20,chair=10,kettle=15,...": the
initial stock; unknown items start at 0).
"""
import json
import os
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

PUBSUB = os.environ.get("PUBSUB_NAME", "pubsub")
DATA_DIR = os.environ.get("DATA_DIR", ".data/warehouse")
STOCK = os.environ.get("WAREHOUSE_STOCK", "lamp=20,chair=10,kettle=15,bicycle=5,headphones=25")
TOPICS = ("order-reserved", "order-completed", "reservation-expired")

os.makedirs(DATA_DIR, exist_ok=True)
db = sqlite3.connect(os.path.join(DATA_DIR, "warehouse.db"), check_same_thread=False, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE IF NOT EXISTS shelf (item TEXT PRIMARY KEY, on_shelf INTEGER NOT NULL)")
db.execute(
    "CREATE TABLE IF NOT EXISTS items (order_id TEXT PRIMARY KEY, item TEXT NOT NULL, "
    "state TEXT NOT NULL, updated_ms INTEGER NOT NULL)"
)
for entry in filter(None, STOCK.split(",")):
    name, _, count = entry.partition("=")
    db.execute("INSERT OR IGNORE INTO shelf VALUES (?, ?)", (name.strip(), int(count or 0)))
lock = threading.Lock()


def log(text):
    print(f"warehouse: {text}", flush=True)


def move(order_id, item, new_state, shelf_delta):
    db.execute("INSERT OR IGNORE INTO shelf VALUES (?, 0)", (item,))
    if shelf_delta:
        db.execute("UPDATE shelf SET on_shelf = on_shelf + ? WHERE item = ?", (shelf_delta, item))
    db.execute(
        "INSERT INTO items VALUES (?,?,?,?) ON CONFLICT(order_id) DO UPDATE SET state=excluded.state, "
        "updated_ms=excluded.updated_ms", (order_id, item, new_state, int(time.time() * 1000)))


def handle(topic, order):
    order_id, item = order["orderId"], order.get("item", "item")
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT state FROM items WHERE order_id = ?", (order_id,)).fetchone()
            state = row[0] if row else None
            if topic == "order-reserved" and state is None:
                move(order_id, item, "held", -1)
                log(f"{item} for {order_id} taken off the shelf and held for pickup")
            elif topic == "order-completed" and state in (None, "held"):
                # No 'held' row yet: the reserved event comes later and is then ignored.
                move(order_id, item, "picked", -1 if state is None else 0)
                log(f"{item} for {order_id} handed to the customer")
            elif topic == "reservation-expired" and state in (None, "held"):
                move(order_id, item, "returned", 1 if state == "held" else 0)
                log(f"{item} for {order_id} put back on the shelf")
            else:
                log(f"{topic} for {order_id}: item already {state}, nothing to do")
            db.execute("COMMIT")
        except Exception:
            db.execute("ROLLBACK")
            raise


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
        path = urlparse(self.path).path
        if path == "/healthz":
            return self.reply(200, {"ok": True})
        if path == "/dapr/subscribe":
            return self.reply(200, [{"pubsubname": PUBSUB, "topic": t, "route": f"/events/{t}"} for t in TOPICS])
        with lock:
            if path == "/stock":
                rows = db.execute("SELECT item, on_shelf FROM shelf ORDER BY item").fetchall()
                held = dict(db.execute("SELECT item, COUNT(*) FROM items WHERE state = 'held' GROUP BY item"))
                return self.reply(200, {"stock": [
                    {"item": i, "onShelf": n, "held": held.get(i, 0)} for i, n in rows]})
            if path == "/items":
                rows = db.execute("SELECT order_id, item, state, updated_ms FROM items").fetchall()
                return self.reply(200, {"items": [
                    dict(zip(("orderId", "item", "state", "updatedMs"), r)) for r in rows]})
            if path.startswith("/items/"):
                row = db.execute("SELECT order_id, item, state, updated_ms FROM items WHERE order_id = ?",
                                 (path.removeprefix("/items/"),)).fetchone()
                if row:
                    return self.reply(200, dict(zip(("orderId", "item", "state", "updatedMs"), row)))
                return self.reply(404, {"errorCode": "NOT_FOUND", "message": "no item for this order"})
        self.reply(404, {"errorCode": "NOT_FOUND", "message": path})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        topic = urlparse(self.path).path.removeprefix("/events/")
        if topic not in TOPICS:
            return self.reply(404, {"errorCode": "NOT_FOUND", "message": self.path})
        try:
            order = json.loads(raw)["data"]
            order["orderId"]
        except (ValueError, KeyError, TypeError):
            log(f"malformed {topic} event dropped")
            return self.reply(200, {"status": "DROP"})
        try:
            handle(topic, order)
        except sqlite3.Error as e:
            log(f"{topic} for {order['orderId']}: {e}; retry")
            return self.reply(200, {"status": "RETRY"})
        self.reply(200, {"status": "SUCCESS"})


if __name__ == "__main__":
    port = int(os.environ.get("APP_PORT", "6005"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    log(f"listening on 127.0.0.1:{port} (state {DATA_DIR})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
