// The official Dapr JavaScript SDK (@dapr/dapr, HTTP protocol) against `outrider sidecar`:
// DaprServer.pubsub.subscribe serves /dapr/subscribe and the route, DaprClient.pubsub.publish
// publishes through the sidecar, and the message must come back to the subscriber.
//
//   DAPR_HTTP_PORT=<sidecar port> APP_PORT=<this app's port> node test.mjs
// Exit code 0 on success; prints "SDK OK" last.
import { CommunicationProtocolEnum, DaprClient, DaprServer, LogLevel } from "@dapr/dapr";

const daprHost = "127.0.0.1";
const daprPort = process.env.DAPR_HTTP_PORT;
const appPort = process.env.APP_PORT;
const timeoutMs = 30000;

function fail(message) {
  console.error(`SDK FAILED: ${message}`);
  process.exit(1);
}
setTimeout(() => fail(`no delivery within ${timeoutMs} ms`), timeoutMs).unref();

const clientOptions = {
  daprHost,
  daprPort,
  communicationProtocol: CommunicationProtocolEnum.HTTP,
  logger: { level: LogLevel.Warn },
};
const server = new DaprServer({
  serverHost: "127.0.0.1",
  serverPort: appPort,
  communicationProtocol: CommunicationProtocolEnum.HTTP,
  clientOptions,
  logger: { level: LogLevel.Warn },
});

const received = [];
let resolveDone;
const done = new Promise((resolve) => (resolveDone = resolve));
await server.pubsub.subscribe("pubsub", "sdk-orders", async (data, headers) => {
  received.push({ data, headers });
  if (received.length === 2) resolveDone();
});
await server.start(); // waits for the sidecar (healthz/outbound, metadata)

// The sidecar subscribes once it has read /dapr/subscribe: wait for /v1.0/healthz.
for (let i = 0; ; ++i) {
  const r = await fetch(`http://${daprHost}:${daprPort}/v1.0/healthz`).catch(() => null);
  if (r && r.status === 204) break;
  if (i > 300) fail("sidecar never became healthy");
  await new Promise((resolve) => setTimeout(resolve, 50));
}

const client = new DaprClient(clientOptions);
const metadata = await client.metadata.get();
if (!metadata || !Array.isArray(metadata.subscriptions)) fail("metadata without subscriptions");
if (!metadata.subscriptions.some((s) => s.topic === "sdk-orders")) {
  fail(`metadata does not list the subscription: ${JSON.stringify(metadata.subscriptions)}`);
}
const first = await client.pubsub.publish("pubsub", "sdk-orders", { orderId: 1, item: "lamp" });
if (first.error) fail(`publish: ${first.error}`);
const second = await client.pubsub.publish("pubsub", "sdk-orders", "plain text");
if (second.error) fail(`publish text: ${second.error}`);

await done;
const objects = received.filter((r) => typeof r.data === "object" && r.data.orderId === 1);
const texts = received.filter((r) => r.data === "plain text");
if (objects.length !== 1 || objects[0].data.item !== "lamp") {
  fail(`object payload not delivered intact: ${JSON.stringify(received)}`);
}
if (texts.length !== 1) fail(`text payload not delivered intact: ${JSON.stringify(received)}`);
await server.stop();
console.log("SDK OK");
process.exit(0);
