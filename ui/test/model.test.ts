import { describe, expect, it } from "vitest";
import { anyValueText, decodeNativeTrace } from "../src/lib/model";
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
