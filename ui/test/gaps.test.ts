import { describe, expect, it } from "vitest";
import { axisForSpans, buildAxis, chooseFolds, defaultFoldOptions } from "../src/lib/gaps";
import { day, ms, span } from "./helpers";

describe("gap folding", () => {
  it("folds a 7-day delivery delay between a send and its delivery", () => {
    const spans = [span("send", 0, 5 * ms), span("deliver", 7 * day, 7 * day + 8 * ms)];
    const folds = chooseFolds(spans.flatMap((s) => [s.start, s.end]));
    expect(folds).toEqual([{ start: 5 * ms, end: 7 * day }]);
    const axis = axisForSpans(spans);
    expect(axis.folds).toHaveLength(1);
    // The fold takes its fixed width; the 13 ms of work share the rest.
    expect(axis.folds[0].x1 - axis.folds[0].x0).toBeCloseTo(defaultFoldOptions.foldWidth);
    expect(axis.toX(5 * ms)).toBeCloseTo((5 / 13) * (1 - defaultFoldOptions.foldWidth));
    expect(axis.toX(7 * day)).toBeCloseTo(axis.folds[0].x1);
    expect(axis.toX(7 * day + 8 * ms)).toBe(1);
  });

  it("keeps a slow call inside a quick trace to scale", () => {
    // 90 ms database call in a 100 ms request: below the minimum fold length.
    const spans = [span("root", 0, 100 * ms), span("db", 2 * ms, 92 * ms, { parent: "root" })];
    expect(axisForSpans(spans).folds).toEqual([]);
  });

  it("does not fold the only interval of a single span", () => {
    expect(axisForSpans([span("long", 0, 3 * day)]).folds).toEqual([]);
  });

  it("does not fold a gap that does not dominate the rest", () => {
    // 2 s of work, 3 s quiet, 2 s of work: 3 s is not more than twice the 4 s left.
    const times = [0, 2e9, 5e9, 7e9];
    expect(chooseFolds(times)).toEqual([]);
  });

  it("folds several long gaps when together they dwarf the work", () => {
    const times = [0, 1 * ms, 1 * day, 1 * day + 1 * ms, 3 * day, 3 * day + 1 * ms];
    const folds = chooseFolds(times);
    expect(folds.map((f) => [f.start, f.end])).toEqual([
      [1 * ms, 1 * day],
      [1 * day + 1 * ms, 3 * day],
    ]);
    const axis = buildAxis(0, 3 * day + 1 * ms, folds);
    expect(axis.segments.map((s) => s.folded)).toEqual([false, true, false, true, false]);
    // Monotonic mapping over the whole range.
    let last = -1;
    for (const t of times) {
      const x = axis.toX(t);
      expect(x).toBeGreaterThanOrEqual(last);
      last = x;
    }
  });

  it("does not fold when folding is turned off", () => {
    const spans = [span("send", 0, 5 * ms), span("deliver", 7 * day, 7 * day + 8 * ms)];
    const axis = axisForSpans(spans, false);
    expect(axis.folds).toEqual([]);
    expect(axis.toX(5 * ms)).toBeLessThan(1e-6);
  });

  it("counts event times as activity", () => {
    const s = span("long", 0, 7 * day);
    s.events = [{ time: 1 * ms, name: "sent", attributes: [] }];
    const other = span("b", 7 * day - 1 * ms, 7 * day);
    // quiet stretch 1 ms .. 7 d - 1 ms is folded even though `long` spans it.
    expect(axisForSpans([s, other]).folds.map((f) => [f.start, f.end])).toEqual([[1 * ms, 7 * day - 1 * ms]]);
  });
});
