import { describe, expect, it } from "vitest";
import { anyValueText, decodeCompactTrace, decodeNativeTrace } from "../src/lib/model";
import { summarize } from "../src/lib/search";
import { ticks, visibleRange, barFor } from "../src/lib/waterfall";
import { axisForSpans } from "../src/lib/gaps";
import { formatDuration } from "../src/lib/format";
import { day, ms, span } from "./helpers";

describe("native trace decoding", () => {
  it("keeps nanosecond precision relative to the earliest span", () => {
    const t = decodeNativeTrace({
      traceId: "ab",
      spans: [
        {
          traceId: "ab",
          spanId: "01",
          name: "send",
          kind: "PRODUCER",
          startTimeUnixNano: "1764000000000000001",
          endTimeUnixNano: "1764000000000000501",
          serviceName: "checkout",
          attributes: [{ key: "n", value: { intValue: "3" } }],
          events: [],
          links: [{ traceId: "cd", spanId: "02", attributes: [] }],
          status: { code: "ERROR", message: "boom" },
          resource: { attributes: [{ key: "service.name", value: { stringValue: "checkout" } }] },
          scope: { name: "s", version: "1" },
        },
      ],
    });
    expect(t.startUnixNs).toBe(1764000000000000001n);
    expect(t.spans[0].start).toBe(0);
    expect(t.spans[0].end).toBe(500);
    expect(t.spans[0].attributes).toEqual([{ key: "n", value: "3" }]);
    expect(t.spans[0].links[0].traceId).toBe("cd");
    expect(t.spans[0].status.code).toBe("ERROR");
    expect(t.spans[0].resource[0].value).toBe("checkout");
  });

  it("decodes the compact format: string table, resources, relative times, links into the trace", () => {
    const t = decodeCompactTrace({
      format: "compact-1",
      traceId: "ab",
      base: "1764000000000000001",
      strings: ["", "send", "checkout", "n", "3", "service.name", "s", "1", "cd", "boom", "attempt", "report", "reports"],
      resources: [[[5, 2], 6, 7]],
      spans: [
        ["01", "", 1, 2, 4, 0, 500, 2, 9, 0, 0, [3, 4], [250, 10, []], [8, "02", []]],
        ["03", "01", 1, 2, 5, 1000, 0, 0, 0, -1, 12, [], [], []],
      ],
      linkedFrom: [[8, "04", 11, 12, "01"]],
    });
    expect(t.startUnixNs).toBe(1764000000000000001n);
    const [a, b] = t.spans;
    expect(a).toMatchObject({ spanId: "01", parentId: undefined, name: "send", service: "checkout", kind: "PRODUCER" });
    expect([a.start, a.end]).toEqual([0, 500]);
    expect(a.attributes).toEqual([{ key: "n", value: "3" }]);
    expect(a.events).toEqual([{ time: 250, name: "attempt", attributes: [] }]);
    expect(a.links).toEqual([{ traceId: "cd", spanId: "02", attributes: [] }]);
    expect(a.status).toEqual({ code: "ERROR", message: "boom" });
    expect(a.resource).toEqual([{ key: "service.name", value: "checkout" }]);
    expect(a.scope).toEqual({ name: "s", version: "1" });
    expect(b).toMatchObject({ parentId: "01", kind: "CONSUMER", start: 1000, end: 1000, remoteService: "reports" });
    expect(b.resource).toEqual([]);
    expect(t.linkedFrom).toEqual([{ traceId: "cd", spanId: "04", name: "report", service: "reports", targetSpanId: "01" }]);
  });

  it("prints nested values", () => {
    expect(anyValueText({ arrayValue: { values: [{ intValue: "1" }, { boolValue: true }] } })).toBe("[1, true]");
    expect(anyValueText({ kvlistValue: { values: [{ key: "a", value: { doubleValue: 1.5 } }] } })).toBe("{a: 1.5}");
  });
});

describe("search summaries", () => {
  it("finds the root, duration, services and errors of a Zipkin trace", () => {
    const s = summarize([
      { traceId: "t", id: "2", parentId: "1", name: "get", timestamp: 1500, duration: 100, localEndpoint: { serviceName: "b" }, tags: { error: "x" } },
      { traceId: "t", id: "1", name: "checkout", timestamp: 1000, duration: 1000, localEndpoint: { serviceName: "a" } },
    ]);
    expect(s.rootName).toBe("checkout");
    expect(s.durationNs).toBe(1000 * 1000);
    expect(s.errorCount).toBe(1);
    expect(s.services.map((x) => x.name)).toEqual(["a", "b"]);
  });
});

describe("waterfall geometry", () => {
  it("renders only the rows in view, with overscan", () => {
    expect(visibleRange(0, 220, 22, 10000, 5)).toEqual({ first: 0, last: 15 });
    expect(visibleRange(22000, 220, 22, 10000, 5)).toEqual({ first: 995, last: 1015 });
  });

  it("gives zero-length spans a visible bar and labels ticks from the trace start", () => {
    const axis = axisForSpans([span("a", 0, 10 * ms), span("b", 7 * day, 7 * day + 10 * ms)]);
    expect(barFor(5 * ms, 5 * ms, axis).width).toBeGreaterThan(0);
    const labels = ticks(axis).map((t) => t.label);
    expect(labels[0]).toBe("0");
    expect(labels).toContain(formatDuration(7 * day));
    expect(labels.some((l) => l.startsWith("+"))).toBe(true);
  });

  it("formats durations", () => {
    expect(formatDuration(7 * day)).toBe("7 d");
    expect(formatDuration(1234567)).toBe("1.23 ms");
    expect(formatDuration(500)).toBe("500 ns");
    expect(formatDuration(100 * ms)).toBe("100 ms");
    expect(formatDuration(1.5 * 60e9)).toBe("1.5 min");
  });
});
