// payments: charges and refunds through the payment gateway, reached only
// through the sidecar's HTTP output binding `payment-gateway` (the ambassador:
// the sidecar applies the retry / timeout / circuit-breaker policy of
// resources/resiliency.yaml). Node.js standard library only.
//
// Exactly once: every gateway call carries an Idempotency-Key derived from
// the order (`charge-<orderId>`, `refund-<orderId>`), so a retry of a call
// that did reach the gateway is not paid twice; and this service remembers
// each order's charge and refund (payments.json), so a second refund request
// for the same order (a duplicate delivery upstream) answers the first result.
//
// Environment: APP_PORT (6002), DAPR_HTTP_PORT (3500), DAPR_API_TOKEN,
// DATA_DIR (.data/payments), GATEWAY_BINDING (payment-gateway).
'use strict';
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const appPort = Number(process.env.APP_PORT || 6002);
const daprPort = Number(process.env.DAPR_HTTP_PORT || 3500);
const binding = process.env.GATEWAY_BINDING || 'payment-gateway';
const dataDir = process.env.DATA_DIR || '.data/payments';
const stateFile = path.join(dataDir, 'payments.json');

fs.mkdirSync(dataDir, { recursive: true });
// orderId -> { orderId, amountCents, chargeId, chargedAt, refundId, refundedAt }
let payments = {};
try {
  payments = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
} catch (e) {
  if (e.code !== 'ENOENT') throw e;
}

// Atomic replace: a crash leaves the old or the new file, never half of one.
function save() {
  const tmp = `${stateFile}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  fs.writeSync(fd, JSON.stringify(payments, null, 1));
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, stateFile);
}

// One operation per order at a time (a duplicate delivery waits for the first).
const chains = new Map();
function serialized(orderId, fn) {
  const prev = chains.get(orderId) || Promise.resolve();
  const next = prev.then(fn, fn);
  const tail = next.catch(() => {});
  chains.set(orderId, tail);
  tail.then(() => { if (chains.get(orderId) === tail) chains.delete(orderId); });
  return next;
}

class GatewayError extends Error {
  constructor(status, body) {
    super(`payment gateway call failed (${status}): ${body}`);
    this.status = status;
  }
}

// POST /v1.0/bindings/{name} {operation: "post", data, metadata: {path, <headers>}}.
// The trace context of the incoming request goes along, so the ambassador's
// spans (and its retries) join the caller's trace.
async function gateway(pathName, data, idempotencyKey, trace) {
  const headers = { 'content-type': 'application/json', ...trace };
  if (process.env.DAPR_API_TOKEN) headers['dapr-api-token'] = process.env.DAPR_API_TOKEN;
  const res = await fetch(`http://127.0.0.1:${daprPort}/v1.0/bindings/${binding}`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      operation: 'post',
      data,
      metadata: { path: pathName, 'Idempotency-Key': idempotencyKey, 'Content-Type': 'application/json' },
    }),
  });
  const text = await res.text();
  if (!res.ok) throw new GatewayError(res.status, text);
  return text ? JSON.parse(text) : {};
}

async function charge(body, trace) {
  const { orderId, amountCents } = body;
  if (typeof orderId !== 'string' || !Number.isInteger(amountCents) || amountCents <= 0) {
    return [400, { errorCode: 'BAD_REQUEST', message: 'orderId and a positive amountCents are required' }];
  }
  return serialized(orderId, async () => {
    const known = payments[orderId];
    if (known && known.chargeId) return [200, { ...known, status: 'charged', duplicate: true }];
    const result = await gateway('/v1/charges', { orderId, amountCents }, `charge-${orderId}`, trace);
    payments[orderId] = { orderId, amountCents, chargeId: result.id, chargedAt: Date.now() };
    save();
    console.log(`payments: charged ${orderId} ${amountCents} cents (${result.id})`);
    return [200, { ...payments[orderId], status: 'charged' }];
  });
}

async function refund(body, trace) {
  const { orderId } = body;
  if (typeof orderId !== 'string') return [400, { errorCode: 'BAD_REQUEST', message: 'orderId is required' }];
  return serialized(orderId, async () => {
    const known = payments[orderId];
    if (!known || !known.chargeId) return [404, { errorCode: 'NO_CHARGE', message: `no charge for ${orderId}` }];
    if (known.refundId) return [200, { ...known, status: 'refunded', duplicate: true }];
    const result = await gateway(
      '/v1/refunds', { chargeId: known.chargeId, orderId, amountCents: known.amountCents }, `refund-${orderId}`, trace);
    known.refundId = result.id;
    known.refundedAt = Date.now();
    save();
    console.log(`payments: refunded ${orderId} (${result.id})`);
    return [200, { ...known, status: 'refunded' }];
  });
}

function view(p) {
  return { ...p, status: p.refundId ? 'refunded' : p.chargeId ? 'charged' : 'none' };
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const trace = {};
  for (const h of ['traceparent', 'tracestate']) if (req.headers[h]) trace[h] = req.headers[h];
  try {
    if (req.method === 'GET' && url.pathname === '/healthz') return send(res, 200, { ok: true });
    if (req.method === 'GET' && url.pathname === '/payments') {
      return send(res, 200, { payments: Object.values(payments).map(view) });
    }
    const one = url.pathname.match(/^\/payments\/([A-Za-z0-9._-]+)$/);
    if (req.method === 'GET' && one) {
      const p = payments[one[1]];
      return p ? send(res, 200, view(p)) : send(res, 404, { errorCode: 'NOT_FOUND', message: 'no payment' });
    }
    if (req.method === 'POST' && (url.pathname === '/charge' || url.pathname === '/refund')) {
      let body;
      try {
        body = JSON.parse((await readBody(req)) || '{}');
      } catch {
        return send(res, 400, { errorCode: 'BAD_REQUEST', message: 'expected JSON' });
      }
      const [status, out] = url.pathname === '/charge' ? await charge(body, trace) : await refund(body, trace);
      return send(res, status, out);
    }
    send(res, 404, { errorCode: 'NOT_FOUND', message: `${req.method} ${url.pathname}` });
  } catch (e) {
    console.log(`payments: ${req.method} ${url.pathname}: ${e.message}`);
    // The ambassador already retried; the caller decides (orders retries the expiry later).
    send(res, e instanceof GatewayError ? 502 : 500, { errorCode: 'GATEWAY', message: e.message });
  }
});

server.listen(appPort, '127.0.0.1', () => {
  console.log(`payments: listening on 127.0.0.1:${appPort} (sidecar ${daprPort}, binding ${binding}, state ${stateFile})`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
