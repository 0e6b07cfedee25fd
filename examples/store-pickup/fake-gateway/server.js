// fake-gateway: a local stand-in for an external payment gateway that fails
// transiently, so the demo shows the ambassador's retries and the payments
// service's idempotency. Node.js standard library only.
//
//   POST /v1/charges {orderId, amountCents}        -> 200 {id: "ch_..."}
//   POST /v1/refunds {chargeId, orderId, amountCents} -> 200 {id: "re_..."}
//   GET  /v1/stats  -> what happened: every applied charge and refund, the
//                      attempts per Idempotency-Key, failures and slow answers
//
// Idempotency-Key: a repeated key answers the stored result without applying
// the operation again (as real gateways do). A refund with a *new* key is
// applied again even for an already refunded charge: this fake lets a double
// refund happen, so tests can catch a client that would cause one.
//
// Failure injection (environment):
//   GATEWAY_FAIL_RATE  fraction of requests answered 503 before doing anything (0.25)
//   GATEWAY_SLOW_RATE  fraction of requests that are applied but answered late (0.1)
//   GATEWAY_SLOW_MS    how late (1500; within the deadline of resources/resiliency.yaml)
//   GATEWAY_FAIL_FIRST "1": the first attempt of every Idempotency-Key fails with 503
//   GATEWAY_SEED       seed of the deterministic pseudo-random failures (42)
//   GATEWAY_PORT or APP_PORT (7480), DATA_DIR (.data/fake-gateway) for gateway.json
'use strict';
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const port = Number(process.env.GATEWAY_PORT || process.env.APP_PORT || 7480);
const failRate = Number(process.env.GATEWAY_FAIL_RATE ?? 0.25);
const slowRate = Number(process.env.GATEWAY_SLOW_RATE ?? 0.1);
const slowMs = Number(process.env.GATEWAY_SLOW_MS ?? 1500);
const failFirst = process.env.GATEWAY_FAIL_FIRST === '1';
const dataDir = process.env.DATA_DIR || '.data/fake-gateway';
const stateFile = path.join(dataDir, 'gateway.json');

// mulberry32: a small deterministic PRNG, so a run's failures are reproducible.
let seed = Number(process.env.GATEWAY_SEED ?? 42) >>> 0;
function random() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

fs.mkdirSync(dataDir, { recursive: true });
let state = { charges: [], refunds: [], byKey: {}, attempts: {}, requests: 0, failures: 0, slow: 0 };
try {
  state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
} catch (e) {
  if (e.code !== 'ENOENT') throw e;
}
function save() {
  fs.writeFileSync(`${stateFile}.tmp`, JSON.stringify(state));
  fs.renameSync(`${stateFile}.tmp`, stateFile);
}

function send(res, status, body, delayMs = 0) {
  const text = JSON.stringify(body);
  setTimeout(() => {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }, delayMs);
}

let counter = 0;
function newId(prefix) {
  counter += 1;
  return `${prefix}_${Date.now().toString(36)}${counter.toString(36)}`;
}

function apply(kind, body, key) {
  if (kind === 'charges') {
    const charge = { id: newId('ch'), orderId: body.orderId, amountCents: body.amountCents, key, at: Date.now() };
    state.charges.push(charge);
    return charge;
  }
  const charge = state.charges.find((c) => c.id === body.chargeId);
  if (!charge) return null;
  const refund = { id: newId('re'), chargeId: charge.id, orderId: charge.orderId, amountCents: charge.amountCents, key, at: Date.now() };
  state.refunds.push(refund);
  return refund;
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const url = new URL(req.url, 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/v1/stats') return send(res, 200, state);
    if (req.method === 'GET' && url.pathname === '/healthz') return send(res, 200, { ok: true });
    const m = url.pathname.match(/^\/v1\/(charges|refunds)$/);
    if (req.method !== 'POST' || !m) return send(res, 404, { error: 'not found' });
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      return send(res, 400, { error: 'expected JSON' });
    }
    const key = req.headers['idempotency-key'];
    if (!key) return send(res, 400, { error: 'Idempotency-Key header required' });
    state.requests += 1;
    state.attempts[key] = (state.attempts[key] || 0) + 1;
    const first = state.attempts[key] === 1;
    if ((failFirst && first) || random() < failRate) {
      state.failures += 1;
      save();
      console.log(`fake-gateway: 503 for ${m[1]} ${key} (attempt ${state.attempts[key]})`);
      return send(res, 503, { error: 'temporarily unavailable' });
    }
    let result = state.byKey[key];
    if (!result) {
      result = apply(m[1], body, key);
      if (!result) return send(res, 404, { error: 'no such charge' });
      state.byKey[key] = result;
      console.log(`fake-gateway: applied ${m[1]} ${result.id} for ${result.orderId} (${key})`);
    } else {
      console.log(`fake-gateway: replayed ${key} -> ${result.id}`);
    }
    const slow = random() < slowRate;
    if (slow) state.slow += 1;
    save();
    send(res, 200, result, slow ? slowMs : 0);
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`fake-gateway: listening on 127.0.0.1:${port} (fail ${failRate}, slow ${slowRate} x ${slowMs} ms${failFirst ? ', first attempt fails' : ''})`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { server.close(); process.exit(0); });
