// Time to open one trace in Debian's chromium (playwright-core, headless), as
// figures, not assertions:
//   node ui/test/browser/measure.mjs <collector base URL> <trace id> [runs] [chromium path]
// Per run, from the start of navigation (performance.now() in the page):
//  - fetched: the trace response fully received (resource timing),
//  - parsed / decoded: the UI's marks after JSON parsing and decoding,
//  - first render: the UI's "trace:rendered" mark (the first rows are in the DOM),
//  - interactive: the end of the last long task (> 50 ms) after that, i.e. when
//    the main thread is free to answer a click.
import { chromium } from "playwright-core";

const [base, traceId, runsText = "5", executablePath = "/usr/bin/chromium"] = process.argv.slice(2);
if (!base || !traceId) {
  console.error("usage: measure.mjs <collector base URL> <trace id> [runs] [chromium]");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage", "--no-first-run"],
});
const rows = [];
try {
  for (let run = 0; run < Number(runsText); run++) {
    const context = await browser.newContext({ viewport: { width: 1500, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(120_000);
    await page.addInitScript(() => {
      window.__longTasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__longTasks.push(e.startTime + e.duration);
      }).observe({ type: "longtask", buffered: true });
    });
    await page.goto(`${base}/trace/${traceId}`);
    await page.waitForSelector('[data-testid="waterfall"] .row');
    await page.waitForTimeout(1000); // let long tasks settle
    const r = await page.evaluate(() => {
      const mark = (name) => performance.getEntriesByName(name)[0]?.startTime ?? NaN;
      const res = performance
        .getEntriesByType("resource")
        .find((e) => e.name.includes("/api/outrider/v1/trace/"));
      const rendered = mark("trace:rendered");
      const lastLong = Math.max(rendered, ...window.__longTasks);
      return {
        fetched: res?.responseEnd ?? NaN,
        bytes: res?.transferSize ?? NaN,
        parsed: mark("trace:parsed"),
        decoded: mark("trace:decoded"),
        rendered,
        interactive: lastLong,
      };
    });
    rows.push(r);
    const f = (x) => (Number.isFinite(x) ? Math.round(x) : "-");
    console.log(
      `run ${run + 1}: fetched ${f(r.fetched)} ms (${f(r.bytes / 1024)} KiB over the wire), parsed ${f(r.parsed)}, ` +
        `decoded ${f(r.decoded)}, first render ${f(r.rendered)}, interactive ${f(r.interactive)} ms`,
    );
    await context.close();
  }
} finally {
  await browser.close();
}
const median = (k) => {
  const v = rows.map((r) => r[k]).filter(Number.isFinite).sort((a, b) => a - b);
  return v.length ? Math.round(v[Math.floor(v.length / 2)]) : "-";
};
console.log(
  `median of ${rows.length}: fetched ${median("fetched")} ms, parsed ${median("parsed")}, decoded ${median("decoded")}, ` +
    `first render ${median("rendered")}, interactive ${median("interactive")} ms`,
);
