#!/usr/bin/env python3
"""The store-pickup scenario: places a stream of orders through the storefront,
marks each reserved (the store employee), picks every N-th up right away and
lets the others expire, then waits until every order has reached its end and prints a
summary. Python standard library only.

  python3 scenario.py --storefront http://127.0.0.1:8080 --orders 10 --pickup-every 2
  python3 scenario.py ... --gateway http://127.0.0.1:7480 --json   # also the gateway's counts

Exit status: 0 when picked-up orders are completed and all others cancelled
and refunded exactly once (when --gateway is given), 1 otherwise.
"""
import argparse
import json
import random
import sys
import time
import urllib.error
import urllib.request

ITEMS = [("lamp", 3900), ("chair", 12900), ("kettle", 2500), ("bicycle", 49900), ("headphones", 7900)]
CUSTOMERS = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances"]


def call(base, method, path, body=None, timeout=90):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"content-type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"{}")
        except ValueError:
            return e.code, {}
    except (urllib.error.URLError, OSError) as e:
        return 0, {"message": str(e)}


def with_retries(what, fn, attempts=8):
    """Calls fn() until it answers 2xx; the storefront call is safe to repeat
    (the order id is chosen here, so a repeat is the same order)."""
    status, body = 0, {}
    for attempt in range(attempts):
        status, body = fn()
        if 200 <= status < 300:
            return status, body
        time.sleep(min(0.5 * 2 ** attempt, 4))
    print(f"scenario: {what} failed: {status} {body.get('message', body)}", file=sys.stderr)
    return status, body


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--storefront", default="http://127.0.0.1:8080")
    p.add_argument("--gateway", default="", help="fake gateway URL, to count charges and refunds")
    p.add_argument("--orders", type=int, default=10)
    p.add_argument("--pickup-every", type=int, default=2, help="pick up every N-th order (the others expire)")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between orders")
    p.add_argument("--timeout", type=float, default=180, help="seconds to wait for every order to end")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args()
    rng = random.Random(args.seed)
    run = f"{int(time.time()):x}"
    base = args.storefront.rstrip("/")

    orders = []  # {orderId, pickup}
    for i in range(args.orders):
        item, price = rng.choice(ITEMS)
        customer = rng.choice(CUSTOMERS)
        order_id = f"s{run}-{i:03d}"
        body = {"orderId": order_id, "customer": customer, "email": f"{customer.lower()}@example.com",
                "item": item, "amountCents": price}
        status, placed = with_retries(f"place {order_id}", lambda: call(base, "POST", "/api/orders", body))
        if not 200 <= status < 300:
            orders.append({"orderId": order_id, "pickup": False, "placed": False})
            continue
        status, _ = with_retries(f"reserve {order_id}",
                                 lambda: call(base, "POST", f"/api/orders/{order_id}/reserve", {}))
        pickup = (i % args.pickup_every) == 0
        orders.append({"orderId": order_id, "pickup": pickup, "placed": True, "reserved": 200 <= status < 300})
        if not args.json:
            print(f"placed and reserved {order_id}: {customer}, {item}")
        if pickup and 200 <= status < 300:
            # This customer comes by well within the window.
            status, _ = with_retries(f"pick up {order_id}",
                                     lambda: call(base, "POST", f"/api/orders/{order_id}/pickup", {}))
            if not args.json:
                print(f"picked up {order_id}" if 200 <= status < 300 else f"pick up {order_id}: {status}")
        time.sleep(args.interval)

    # Wait for the end state of every order: completed, or cancelled and refunded.
    want = {o["orderId"]: ("completed" if o["pickup"] else "cancelled") for o in orders if o.get("reserved")}
    deadline = time.time() + args.timeout
    seen = {}
    while time.time() < deadline:
        status, listing = call(base, "GET", "/api/orders")
        if status == 200:
            seen = {o["orderId"]: o for o in listing.get("orders", []) if o["orderId"] in want}
            done = all(oid in seen and seen[oid]["status"] == s and
                       (s != "cancelled" or (seen[oid].get("payment") == "refunded" and
                                             seen[oid].get("shelf") == "returned"))
                       for oid, s in want.items())
            if done:
                break
        time.sleep(0.5)

    gateway = {}
    if args.gateway:
        status, gateway = call(args.gateway.rstrip("/"), "GET", "/v1/stats")
    refunds_by_order, charges_by_order = {}, {}
    for r in gateway.get("refunds", []):
        refunds_by_order[r["orderId"]] = refunds_by_order.get(r["orderId"], 0) + 1
    for c in gateway.get("charges", []):
        charges_by_order[c["orderId"]] = charges_by_order.get(c["orderId"], 0) + 1

    rows, ok = [], True
    for o in orders:
        oid = o["orderId"]
        s = seen.get(oid, {})
        row = {"orderId": oid, "expected": want.get(oid, "not placed"), "status": s.get("status", "?"),
               "payment": s.get("payment"), "shelf": s.get("shelf")}
        if args.gateway:
            row["gatewayCharges"] = charges_by_order.get(oid, 0)
            row["gatewayRefunds"] = refunds_by_order.get(oid, 0)
        good = row["status"] == row["expected"] and (not args.gateway or row["gatewayCharges"] == 1)
        if row["expected"] == "cancelled":
            good = good and row["payment"] == "refunded"
            if args.gateway:
                good = good and row["gatewayRefunds"] == 1
        elif args.gateway:
            good = good and row["gatewayRefunds"] == 0
        row["ok"] = good
        ok = ok and good
        rows.append(row)

    summary = {
        "orders": len(orders),
        "completed": sum(1 for r in rows if r["status"] == "completed"),
        "cancelled": sum(1 for r in rows if r["status"] == "cancelled"),
        "refunded": sum(1 for r in rows if r["payment"] == "refunded"),
        "ok": ok,
        "rows": rows,
    }
    if args.gateway:
        summary["gateway"] = {"requests": gateway.get("requests", 0), "failures": gateway.get("failures", 0),
                              "slow": gateway.get("slow", 0), "charges": len(gateway.get("charges", [])),
                              "refunds": len(gateway.get("refunds", []))}
    if args.json:
        print(json.dumps(summary))
    else:
        print()
        print(f"{'order':<22} {'expected':<10} {'status':<10} {'payment':<9} {'shelf':<9}"
              + (" charges refunds" if args.gateway else ""))
        for r in rows:
            print(f"{r['orderId']:<22} {r['expected']:<10} {r['status']:<10} {str(r['payment']):<9} "
                  f"{str(r['shelf']):<9}" + (f" {r['gatewayCharges']:>7} {r['gatewayRefunds']:>7}" if args.gateway else "")
                  + ("" if r["ok"] else "   <-- unexpected"))
        print(f"\n{summary['orders']} orders: {summary['completed']} completed, {summary['cancelled']} cancelled, "
              f"{summary['refunded']} refunded")
        if args.gateway:
            g = summary["gateway"]
            print(f"gateway: {g['requests']} requests, {g['failures']} answered 503, {g['slow']} slow; "
                  f"{g['charges']} charges and {g['refunds']} refunds applied")
        print("all as expected" if ok else "SOMETHING IS OFF (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
