// A Node.js app instrumented with the OpenTelemetry JS SDK (tests/tracing): HTTP auto-
// instrumentation, W3C propagation, OTLP/HTTP protobuf export to the sidecar's app OTLP port.
//
//   APP_PORT=... DAPR_HTTP_PORT=... OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:<port> node app.js
//
// POST /start     starts a "checkout" span and, inside it, publishes to topic node-orders through
//                 the sidecar; answers {"traceId": ...}
// POST /orders    the subscription's route (a delivery from the sidecar): recorded, SUCCESS
// GET  /dapr/subscribe, GET /deliveries, POST /flush (forces the span export)
'use strict';
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { Resource } = require('@opentelemetry/resources');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const api = require('@opentelemetry/api');

const provider = new NodeTracerProvider({
  resource: new Resource({ 'service.name': 'node-app' }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({
    url: `${process.env.OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces`,
  }), { scheduledDelayMillis: 200 })],
});
provider.register();
registerInstrumentations({ instrumentations: [new HttpInstrumentation()] });

const http = require('http');  // after the instrumentation is registered
const tracer = api.trace.getTracer('outrider-interop');
const deliveries = [];

function publish(body) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: Number(process.env.DAPR_HTTP_PORT), method: 'POST',
      path: '/v1.0/publish/pubsub/node-orders', headers: { 'content-type': 'application/json' },
    }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

function reply(res, code, value) {
  const text = value === undefined ? '' : JSON.stringify(value);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', async () => {
    if (req.method === 'GET' && req.url === '/dapr/subscribe') {
      reply(res, 200, [{ pubsubname: 'pubsub', topic: 'node-orders', route: '/orders' }]);
    } else if (req.method === 'POST' && req.url === '/orders') {
      deliveries.push({ headers: req.headers, body });
      reply(res, 200, { status: 'SUCCESS' });
    } else if (req.method === 'GET' && req.url === '/deliveries') {
      reply(res, 200, deliveries);
    } else if (req.method === 'POST' && req.url === '/start') {
      // A fresh trace (not a child of this /start request's SERVER span).
      const span = tracer.startSpan('checkout', { root: true });
      const status = await api.context.with(api.trace.setSpan(api.context.active(), span),
        () => publish({ order: 1 }));
      span.end();
      reply(res, 200, { traceId: span.spanContext().traceId, spanId: span.spanContext().spanId, status });
    } else if (req.method === 'POST' && req.url === '/flush') {
      await provider.forceFlush();
      reply(res, 204);
    } else {
      reply(res, 404);
    }
  });
});
server.listen(Number(process.env.APP_PORT), '127.0.0.1', () => {
  console.log(`node app listening on 127.0.0.1:${process.env.APP_PORT}`);
});
process.on('SIGTERM', () => { provider.shutdown().finally(() => process.exit(0)); });
