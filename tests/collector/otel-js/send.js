// Sends one trace per exporter to `outrider collector` with the OpenTelemetry
// JS SDK: OTLP/HTTP JSON, OTLP/HTTP protobuf and Zipkin. Each trace has a
// SERVER root and a CLIENT child with attributes, an event, a link and an
// error status. Prints {"<service>": "<trace id>", ...} on stdout.
//   node send.js <otlp host:port> <zipkin host:port>
'use strict';
const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { Resource } = require('@opentelemetry/resources');
const { OTLPTraceExporter: OtlpJson } = require('@opentelemetry/exporter-trace-otlp-http');
const { OTLPTraceExporter: OtlpProto } = require('@opentelemetry/exporter-trace-otlp-proto');
const { ZipkinExporter } = require('@opentelemetry/exporter-zipkin');
const api = require('@opentelemetry/api');

async function sendWith(service, exporter) {
  const provider = new BasicTracerProvider({ resource: new Resource({ 'service.name': service, 'deployment.environment': 'test' }) });
  provider.addSpanProcessor(new SimpleSpanProcessor(exporter));
  const tracer = provider.getTracer('interop-test', '1.2.3');
  const root = tracer.startSpan('GET /orders', { kind: api.SpanKind.SERVER, attributes: { 'http.method': 'GET', 'http.status_code': 200 } });
  const ctx = api.trace.setSpan(api.context.active(), root);
  const linked = { traceId: '0102030405060708090a0b0c0d0e0f10', spanId: '0102030405060708', traceFlags: 1 };
  const child = tracer.startSpan('charge', {
    kind: api.SpanKind.CLIENT,
    attributes: { 'peer.service': 'payments', 'retry.count': 2, 'amounts': [1.5, 2.5], 'cached': false },
    links: [{ context: linked, attributes: { 'link.kind': 'batch' } }],
  }, ctx);
  child.addEvent('request sent', { 'bytes': 42 });
  child.setStatus({ code: api.SpanStatusCode.ERROR, message: 'card declined' });
  await new Promise((r) => setTimeout(r, 5));
  child.end();
  root.end();
  await provider.forceFlush();
  await provider.shutdown();
  return root.spanContext().traceId;
}

async function main() {
  const [otlp, zipkin] = process.argv.slice(2);
  const out = {};
  out['js-otlp-json'] = await sendWith('js-otlp-json', new OtlpJson({ url: `http://${otlp}/v1/traces` }));
  out['js-otlp-proto'] = await sendWith('js-otlp-proto', new OtlpProto({ url: `http://${otlp}/v1/traces` }));
  out['js-zipkin'] = await sendWith('js-zipkin', new ZipkinExporter({ url: `http://${zipkin}/api/v2/spans` }));
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
