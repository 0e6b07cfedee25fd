// storefront: the backend-for-frontend of the store-pickup demo. Serves the
// web page (public/) and a small JSON API for it; composes each view by
// invoking orders, payments and warehouse *concurrently* through its sidecar
// (/v1.0/invoke/{app}/method/...), and still answers when one of them is down
// (the missing part is named in `unavailable`). Node.js standard library only.
//
// Environment: APP_PORT (8080), DAPR_HTTP_PORT (3500), DAPR_API_TOKEN,
// TRACE_UI_URL (optional link to the trace UI shown on the page).
'use strict';
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const appPort = Number(process.env.APP_PORT || 8080);
const daprPort = Number(process.env.DAPR_HTTP_PORT || 3500);
const publicDir = path.join(__dirname, 'public');

// One call to another app through the sidecar; resolves to {status, body}.
async function invoke(app, method, { verb = 'GET', body, trace = {} } = {}) {
  const headers = { ...trace };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (process.env.DAPR_API_TOKEN) headers['dapr-api-token'] = process.env.DAPR_API_TOKEN;
  const res = await fetch(`http://127.0.0.1:${daprPort}/v1.0/invoke/${app}/method/${method}`, {
    method: verb,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60000),
  });
  const text = await res.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { message: text };
  }
  return { status: res.status, body: parsed };
}

// Runs the named calls at the same time; a failed one becomes `unavailable`.
async function compose(calls) {
  const names = Object.keys(calls);
  const settled = await Promise.allSettled(names.map((n) => calls[n]()));
  const out = { unavailable: [] };
  settled.forEach((s, i) => {
    const ok = s.status === 'fulfilled' && s.value.status < 500;
    out[names[i]] = ok ? s.value : null;
    if (!ok) out.unavailable.push(names[i]);
  });
  return out;
}

function orderView(order, payment, item) {
  return {
    ...order,
    payment: payment ? payment.status : undefined,
    refundId: order.refundId || (payment && payment.refundId) || '',
    shelf: item ? item.state : undefined,
  };
}

async function listOrders(trace) {
  const r = await compose({
    orders: () => invoke('orders', 'orders', { trace }),
    payments: () => invoke('payments', 'payments', { trace }),
    warehouse: () => invoke('warehouse', 'items', { trace }),
  });
  if (!r.orders) return [503, { errorCode: 'ORDERS_UNAVAILABLE', message: 'the orders service did not answer', unavailable: r.unavailable }];
  const payments = new Map((r.payments ? r.payments.body.payments : []).map((p) => [p.orderId, p]));
  const items = new Map((r.warehouse ? r.warehouse.body.items : []).map((i) => [i.orderId, i]));
  const orders = r.orders.body.orders.map((o) => orderView(o, payments.get(o.orderId), items.get(o.orderId)));
  return [200, { orders, unavailable: r.unavailable }];
}

async function orderPage(id, trace) {
  const r = await compose({
    orders: () => invoke('orders', `orders/${id}`, { trace }),
    payments: () => invoke('payments', `payments/${id}`, { trace }),
    warehouse: () => invoke('warehouse', `items/${id}`, { trace }),
  });
  if (!r.orders) return [503, { errorCode: 'ORDERS_UNAVAILABLE', message: 'the orders service did not answer', unavailable: r.unavailable }];
  if (r.orders.status !== 200) return [r.orders.status, r.orders.body];
  const payment = r.payments && r.payments.status === 200 ? r.payments.body : null;
  const item = r.warehouse && r.warehouse.status === 200 ? r.warehouse.body : null;
  return [200, { ...orderView(r.orders.body, payment, item), unavailable: r.unavailable }];
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

const staticTypes = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const trace = {};
  for (const h of ['traceparent', 'tracestate']) if (req.headers[h]) trace[h] = req.headers[h];
  try {
    if (req.method === 'GET' && url.pathname === '/healthz') return send(res, 200, { ok: true });
    if (req.method === 'GET' && url.pathname === '/api/config') {
      return send(res, 200, { traceUi: process.env.TRACE_UI_URL || '' });
    }
    if (req.method === 'GET' && url.pathname === '/api/orders') return send(res, ...(await listOrders(trace)));
    if (req.method === 'POST' && url.pathname === '/api/orders') {
      let body;
      try {
        body = JSON.parse((await readBody(req)) || '{}');
      } catch {
        return send(res, 400, { errorCode: 'BAD_REQUEST', message: 'expected JSON' });
      }
      const r = await invoke('orders', 'orders', { verb: 'POST', body, trace });
      return send(res, r.status, r.body);
    }
    const one = url.pathname.match(/^\/api\/orders\/([A-Za-z0-9._-]+)$/);
    if (req.method === 'GET' && one) return send(res, ...(await orderPage(one[1], trace)));
    const action = url.pathname.match(/^\/api\/orders\/([A-Za-z0-9._-]+)\/(reserve|pickup)$/);
    if (req.method === 'POST' && action) {
      const r = await invoke('orders', `orders/${action[1]}/${action[2]}`, { verb: 'POST', body: {}, trace });
      return send(res, r.status, r.body);
    }
    if (req.method === 'GET' && !url.pathname.startsWith('/api/')) {
      const file = url.pathname === '/' ? 'index.html' : path.normalize(url.pathname).replace(/^[/\\]+/, '');
      const full = path.join(publicDir, file);
      if (full.startsWith(publicDir) && fs.existsSync(full) && fs.statSync(full).isFile()) {
        const data = fs.readFileSync(full);
        res.writeHead(200, { 'content-type': staticTypes[path.extname(full)] || 'application/octet-stream', 'content-length': data.length });
        return res.end(data);
      }
    }
    send(res, 404, { errorCode: 'NOT_FOUND', message: `${req.method} ${url.pathname}` });
  } catch (e) {
    console.log(`storefront: ${req.method} ${url.pathname}: ${e.message}`);
    send(res, 502, { errorCode: 'UPSTREAM', message: e.message });
  }
});

server.listen(appPort, '127.0.0.1', () => {
  console.log(`storefront: listening on http://127.0.0.1:${appPort}/ (sidecar ${daprPort})`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { server.close(); process.exit(0); });
