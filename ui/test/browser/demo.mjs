// Browser test of the store-pickup demo (examples/store-pickup) running under `outrider dev`,
// driving Debian's chromium through playwright-core. Run by tests/demo/demo_process_test.cpp
// (demo_process.storefront_and_trace_in_chromium):
//   node ui/test/browser/demo.mjs <storefront URL> <collector URL> <screenshot dir> [chromium path]
// On the storefront page it places an order, sees it paid, marks it reserved and waits until the
// reservation window passes and the order is cancelled and refunded. Then it opens that order's
// trace in the collector's UI and checks the waterfall: the delayed expire-reservation hop is
// folded, the delivery is an async hop, and the refund's calls to the payment gateway show the
// sidecar's retries. Screenshots: storefront.png and trace.png (the README's picture).
// Exit 0 when every check passed.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [storefront, collector, outDir, executablePath = "/usr/bin/chromium"] = process.argv.slice(2);
if (!storefront || !collector || !outDir) {
  console.error("usage: demo.mjs <storefront URL> <collector URL> <screenshot dir> [chromium]");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const timeout = 120_000; // generous: a loaded 2-core machine
let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures++;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The order's trace: it involves notifications (the expiry email) and started after the order
// was placed; wait until its spans are all in (the refund with its retries, the notification).
async function findTrace(sinceMs) {
  const deadline = Date.now() + timeout;
  let last = "no trace yet";
  while (Date.now() < deadline) {
    const now = Date.now();
    const url = `${collector}/api/v2/traces?serviceName=notifications&endTs=${now}&lookback=${now - sinceMs + 500}&limit=20`;
    const traces = await (await fetch(url)).json();
    for (const t of traces) {
      const names = t.map((s) => `${s.localEndpoint?.serviceName} ${s.kind ?? ""} ${s.name}`);
      const gatewayCalls = names.filter((n) => n.startsWith("payments CLIENT") && n.includes("component:payment-gateway")).length;
      const complete =
        names.some((n) => n.includes("process expire-reservation")) &&
        names.some((n) => n.startsWith("notifications") && n.includes("reservation-expired"));
      // charge: >= 2 attempts, refund: >= 2 attempts (the demo's gateway fails every first one)
      if (complete && gatewayCalls >= 4) return t[0].traceId;
      last = `${t[0].traceId}: ${t.length} spans, ${gatewayCalls} gateway calls, complete=${complete}`;
    }
    await sleep(1000);
  }
  throw new Error(`the order's trace did not show up complete: ${last}`);
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(timeout);
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));

  // The storefront: place an order for a kettle (a customer name of its own, to find the row).
  const customer = `Grace ${process.pid}`;
  await page.goto(storefront);
  await page.fill('input[name="customer"]', customer);
  await page.fill('input[name="email"]', "grace@example.com");
  await page.selectOption('select[name="item"]', "kettle");
  const placedAt = Date.now();
  await page.click('#place button');
  const row = page.locator("#orders tr", { hasText: customer });
  await row.first().waitFor();
  check((await row.count()) === 1, "the placed order is listed");
  const orderId = ((await row.locator("td").first().textContent()) ?? "").trim();
  await row.locator("td.status", { hasText: "paid" }).waitFor();
  await row.locator("td", { hasText: "charged" }).waitFor();
  check(true, `order ${orderId} is paid and charged`);

  // Reserve it; the reservation window passes, the delayed message cancels and refunds it.
  await row.locator("button", { hasText: "Mark reserved" }).click();
  await row.locator("td.status", { hasText: "reserved" }).waitFor();
  check(true, "the order is reserved (the expiry message is scheduled)");
  await row.locator("td.status", { hasText: "cancelled" }).waitFor();
  // Payments and the warehouse learn of it by message: they may trail the cancel by a refresh.
  await row.locator("td", { hasText: "refunded" }).waitFor();
  await row.locator("td", { hasText: "returned" }).waitFor();
  const text = (await row.textContent()) ?? "";
  check(/refunded/.test(text) && /returned/.test(text), `after the window: cancelled, refunded, item back on the shelf ("${text.trim()}")`);
  await page.screenshot({ path: join(outDir, "storefront.png") });

  // Its trace in the collector's UI.
  const traceId = await findTrace(placedAt);
  console.log(`order ${orderId}: trace ${traceId}`);
  await page.setViewportSize({ width: 1400, height: 1500 }); // every row of the trace in view
  await page.goto(`${collector}/trace/${traceId}`);
  await page.waitForSelector('[data-testid="waterfall"] .row');
  const folds = page.locator('[data-testid="fold"]');
  await folds.first().waitFor();
  const foldTexts = await folds.allTextContents();
  check(foldTexts.length >= 1, `the delayed hop is folded (${foldTexts.map((t) => t.trim()).join(", ")})`);
  const expiry = page.locator(".row", { hasText: "process expire-reservation" });
  check((await expiry.count()) === 1 && (await expiry.locator(".async-mark").count()) === 1, "the expire-reservation delivery is an async hop");
  const gatewayRows = page.locator(".row", { hasText: "component:payment-gateway" });
  const attempts = await gatewayRows.count();
  check(attempts >= 4, `the gateway calls show the retries (${attempts} attempts for the charge and the refund)`);
  const failed = await page.locator(".row.error", { hasText: "component:payment-gateway" }).count();
  check(failed >= 2, `the failed first attempts are marked as errors (${failed})`);
  const shown = await page.locator('[data-testid="waterfall"] .row').count();
  await page.screenshot({ path: join(outDir, "trace.png"), clip: { x: 0, y: 0, width: 1400, height: Math.min(1500, 200 + shown * 22) } });

  check(pageErrors.length === 0, `no page errors${pageErrors.length ? ": " + pageErrors.join("; ") : ""}`);
} finally {
  await browser.close();
}
console.log(failures ? `${failures} check(s) failed` : "all checks passed");
process.exit(failures ? 1 : 0);
