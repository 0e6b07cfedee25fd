// Synthetic traces for the browser test and for trying the UI by hand:
//   node ui/test/browser/synthetic.mjs http://127.0.0.1:4318   (posts them; prints the trace ids)
//
// checkout: an HTTP request that calls orders → inventory, pricing (blocking)
// and publishes order-placed, delivered to billing 7 days later (a PRODUCER →
// CONSUMER hop), with an error, events, and a link to the report trace.
// report: a later trace whose span links back to the checkout's send.
// large: 10,000 spans over 40 services, for the "opens in about a second" check.

const day = 86400n * 1000000000n;
const ms = 1000000n;
const kinds = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 };

export function hexId(seed, bytes) {
  let out = "";
  let x = BigInt(seed) * 2654435761n + 12345n;
  while (out.length < bytes * 2) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    out += x.toString(16).padStart(16, "0");
  }
  return out.slice(0, bytes * 2);
}

function otlp(spans) {
  const byService = new Map();
  for (const s of spans) {
    if (!byService.has(s.service)) byService.set(s.service, []);
    byService.get(s.service).push(s);
  }
  return {
    resourceSpans: [...byService.entries()].map(([service, list]) => ({
      resource: {
        attributes: [
          { key: "service.name", value: { stringValue: service } },
          { key: "host.name", value: { stringValue: `${service}-7f9c` } },
        ],
      },
      scopeSpans: [
        {
          scope: { name: "outrider-synthetic", version: "1" },
          spans: list.map((s) => ({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? "",
            name: s.name,
            kind: kinds[s.kind],
            startTimeUnixNano: String(s.start),
            endTimeUnixNano: String(s.end),
            attributes: Object.entries(s.attributes ?? {}).map(([key, v]) => ({
              key,
              value: typeof v === "number" ? { intValue: String(v) } : { stringValue: String(v) },
            })),
            events: (s.events ?? []).map((e) => ({
              timeUnixNano: String(e.time),
              name: e.name,
              attributes: [],
            })),
            links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId, attributes: [] })),
            status: s.error ? { code: 2, message: s.error } : { code: 0 },
          })),
        },
      ],
    })),
  };
}

export function scenario(nowNs = BigInt(Date.now()) * ms) {
  const checkoutId = hexId(1, 16);
  const reportId = hexId(2, 16);
  const largeId = hexId(3, 16);
  const t0 = nowNs - 7n * day - 30n * 60n * 1000n * ms; // 7 days and 30 minutes ago
  const id = (n) => hexId(100 + n, 8);
  const at = (offsetMs) => t0 + BigInt(Math.round(offsetMs * 1e6));
  const later = (offsetMs) => t0 + 7n * day + BigInt(Math.round(offsetMs * 1e6));
  const c = (spanId, parent, service, name, kind, start, end, extra = {}) => ({
    traceId: checkoutId,
    spanId: id(spanId),
    parentSpanId: parent === undefined ? undefined : id(parent),
    service,
    name,
    kind,
    start,
    end,
    ...extra,
  });
  const reportSpan = hexId(900, 8);
  const checkout = [
    c(1, undefined, "frontend", "POST /checkout", "SERVER", at(0), at(120), { attributes: { "http.route": "/checkout", "http.response.status_code": 202 } }),
    c(2, 1, "frontend", "invoke orders/place", "CLIENT", at(5), at(100), { attributes: { "peer.service": "orders" } }),
    c(3, 2, "orders", "POST /orders", "SERVER", at(8), at(97)),
    c(4, 3, "orders", "GET inventory/reserve", "CLIENT", at(10), at(40), { attributes: { "peer.service": "inventory" } }),
    c(5, 4, "inventory", "GET /reserve", "SERVER", at(12), at(38)),
    c(6, 3, "orders", "GET pricing/quote", "CLIENT", at(42), at(90), { attributes: { "peer.service": "pricing" } }),
    c(7, 6, "pricing", "GET /quote", "SERVER", at(45), at(88), { events: [{ time: at(60), name: "cache miss" }] }),
    c(8, 3, "orders", "audit log", "INTERNAL", at(43), at(50)),
    c(9, 3, "orders", "publish order-placed", "PRODUCER", at(91), at(95), {
      attributes: { "messaging.system": "outrider", "messaging.destination.name": "order-placed", "outrider.deliver_after": "7d" },
    }),
    c(10, 9, "billing", "deliver order-placed", "CONSUMER", later(0), later(40), {
      attributes: { "messaging.system": "outrider", "messaging.destination.name": "order-placed" },
      links: [{ traceId: reportId, spanId: reportSpan }],
    }),
    c(11, 10, "billing", "POST payments/charge", "CLIENT", later(2), later(30), {
      error: "payment provider answered 503",
      events: [{ time: later(12), name: "retry" }],
      attributes: { "peer.service": "payments" },
    }),
    c(12, 10, "billing", "send receipt", "PRODUCER", later(31), later(34)),
  ];
  const report = [
    { traceId: reportId, spanId: reportSpan, service: "reports", name: "nightly billing report", kind: "SERVER", start: later(-3600e3), end: later(-3590e3), links: [{ traceId: checkoutId, spanId: id(9) }] },
    { traceId: reportId, spanId: hexId(901, 8), parentSpanId: reportSpan, service: "reports", name: "SELECT invoices", kind: "CLIENT", start: later(-3599e3), end: later(-3592e3) },
  ];
  // 10,000 spans: 40 services, 10 levels of blocking calls, one hour ago.
  const large = [];
  const base = nowNs - 60n * 60n * 1000n * ms;
  let n = 0;
  const services = Array.from({ length: 40 }, (_, i) => `svc-${String(i).padStart(2, "0")}`);
  const add = (parent, depth, startNs, lengthNs) => {
    const spanId = hexId(10000 + n, 8);
    const service = services[n % services.length];
    large.push({
      traceId: largeId, spanId, parentSpanId: parent, service, name: `op-${depth}-${n % 17}`,
      kind: depth === 0 ? "SERVER" : n % 2 ? "CLIENT" : "SERVER", start: startNs, end: startNs + lengthNs,
      attributes: { "n": n },
    });
    n++;
    return spanId;
  };
  const root = add(undefined, 0, base, 2000n * ms);
  const queue = [{ id: root, depth: 0, start: base, length: 2000n * ms }];
  while (n < 10000 && queue.length) {
    const p = queue.shift();
    const children = Math.min(10000 - n, 9);
    for (let i = 0; i < children && n < 10000; i++) {
      const length = p.length / 12n;
      const start = p.start + (p.length * BigInt(i)) / 10n + 1n * ms;
      const child = add(p.id, p.depth + 1, start, length);
      queue.push({ id: child, depth: p.depth + 1, start, length });
    }
  }
  return { checkoutId, reportId, largeId, producerSpanId: id(9), consumerSpanId: id(10), checkout, report, large };
}

export async function post(otlpBase, spans) {
  const body = JSON.stringify(otlp(spans));
  const resp = await fetch(`${otlpBase}/v1/traces`, { method: "POST", headers: { "content-type": "application/json" }, body });
  if (!resp.ok) throw new Error(`POST /v1/traces: ${resp.status} ${await resp.text()}`);
}

export async function postLarge(otlpBase, s) {
  for (let i = 0; i < s.large.length; i += 2500) await post(otlpBase, s.large.slice(i, i + 2500));
}

/** Posts the checkout and report traces; with `large`, the 10,000-span trace too. */
export async function postScenario(otlpBase, large = true) {
  const s = scenario();
  await post(otlpBase, s.checkout);
  await post(otlpBase, s.report);
  if (large) await postLarge(otlpBase, s);
  return s;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const target = process.argv[2] ?? "http://127.0.0.1:4318";
  const s = await postScenario(target);
  console.log(JSON.stringify({ checkout: s.checkoutId, report: s.reportId, large: s.largeId }));
}
