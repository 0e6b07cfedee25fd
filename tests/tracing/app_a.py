#!/usr/bin/env python3
"""Test app A for the tracing process test (standard library only).

    app_a.py SIDECAR_HTTP_PORT SIDECAR_OTLP_PORT TOPIC DELIVER_AFTER

Plays an instrumented app: it starts a span of its own ("checkout", SERVER),
publishes one message through its sidecar with that span's traceparent and
a delivery delay, then exports the span to the sidecar's OTLP/HTTP receiver
(OTLP/JSON), as any OpenTelemetry SDK pointed at the sidecar would. Prints
"trace=<id> span=<id> message=<id>" and exits 0 on success.
"""
import json
import os
import sys
import time
import urllib.request


def post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, dict(resp.headers)


def main():
    http_port, otlp_port, topic, delay = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    trace_id = os.urandom(16).hex()
    span_id = os.urandom(8).hex()
    start = time.time_ns()
    status, headers = post(
        f"http://127.0.0.1:{http_port}/v1.0/publish/pubsub/{topic}?metadata.deliverAfter={delay}",
        json.dumps({"order": 7}).encode(),
        {"content-type": "application/json", "traceparent": f"00-{trace_id}-{span_id}-01",
         "tracestate": "appa=1"})
    if status != 204:
        print(f"publish answered {status}", flush=True)
        return 1
    message_id = {k.lower(): v for k, v in headers.items()}.get("outrider-message-id", "")
    end = time.time_ns()
    spans = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "app-a"}}]},
        "scopeSpans": [{"scope": {"name": "app_a.py"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "name": "checkout", "kind": 2,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
            "attributes": [{"key": "app", "value": {"stringValue": "a"}}]}]}]}]}
    status, _ = post(f"http://127.0.0.1:{otlp_port}/v1/traces", json.dumps(spans).encode(),
                     {"content-type": "application/json"})
    if status != 200:
        print(f"OTLP export answered {status}", flush=True)
        return 1
    print(f"trace={trace_id} span={span_id} message={message_id}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
