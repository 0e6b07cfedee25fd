import { describe, expect, it } from "vitest";
import { criticalPath, criticalPathOf } from "../src/lib/critical_path";
import { buildTree } from "../src/lib/tree";
import { day, ms, span } from "./helpers";

const ids = (segments: { spanId: string; start: number; end: number }[]) =>
  segments.map((s) => [s.spanId, s.start / ms, s.end / ms]);

describe("critical path", () => {
  it("follows the last-finishing blocking child, then what ran before it", () => {
    const tree = buildTree([
      span("root", 0, 100 * ms, { kind: "SERVER" }),
      span("a", 10 * ms, 40 * ms, { parent: "root", kind: "CLIENT" }),
      span("b", 20 * ms, 30 * ms, { parent: "root", kind: "CLIENT" }), // parallel with a, shorter
      span("c", 50 * ms, 90 * ms, { parent: "root", kind: "CLIENT" }),
    ]);
    expect(ids(criticalPathOf(tree.roots[0]))).toEqual([
      ["root", 90, 100],
      ["c", 50, 90],
      ["root", 40, 50],
      ["a", 10, 40],
      ["root", 0, 10],
    ]);
    expect(criticalPath(tree).spans.has("b")).toBe(false);
  });

  it("descends into the children of critical children", () => {
    const tree = buildTree([
      span("root", 0, 50 * ms),
      span("a", 0, 50 * ms, { parent: "root" }),
      span("a1", 10 * ms, 20 * ms, { parent: "a" }),
    ]);
    expect(ids(criticalPathOf(tree.roots[0]))).toEqual([
      ["a", 20, 50],
      ["a1", 10, 20],
      ["a", 0, 10],
    ]);
  });

  it("does not count an async producer→consumer hop as blocking", () => {
    const tree = buildTree([
      span("http", 0, 10 * ms, { kind: "SERVER", service: "checkout" }),
      span("send", 2 * ms, 4 * ms, { parent: "http", kind: "PRODUCER", service: "checkout" }),
      span("deliver", 7 * day, 7 * day + 5 * ms, { parent: "send", kind: "CONSUMER", service: "billing" }),
      span("charge", 7 * day + 1 * ms, 7 * day + 4 * ms, { parent: "deliver", kind: "CLIENT", service: "billing" }),
    ]);
    const path = criticalPath(tree);
    // The request's path ends at the request: the consumer is not on it.
    expect(ids(criticalPathOf(tree.roots[0]))).toEqual([
      ["http", 4, 10],
      ["send", 2, 4],
      ["http", 0, 2],
    ]);
    // The delivery is a piece of work of its own, with its own path.
    expect(path.entries.map((e) => e.span.spanId)).toEqual(["http", "deliver"]);
    expect(path.spans.has("charge")).toBe(true);
    expect(tree.byId.get("deliver")!.async).toBe(true);
  });

  it("treats a child that starts after its parent ended as not blocking", () => {
    const tree = buildTree([span("root", 0, 10 * ms), span("later", 20 * ms, 30 * ms, { parent: "root" })]);
    expect(ids(criticalPathOf(tree.roots[0]))).toEqual([["root", 0, 10]]);
    expect(tree.byId.get("later")!.async).toBe(true);
  });

  it("clips a child that outlives its parent at the parent's end", () => {
    const tree = buildTree([span("root", 0, 10 * ms), span("c", 5 * ms, 15 * ms, { parent: "root" })]);
    expect(ids(criticalPathOf(tree.roots[0]))).toEqual([
      ["c", 5, 10],
      ["root", 0, 5],
    ]);
  });

  it("handles a 10,000-deep chain without overflowing the stack", () => {
    const spans = [span("s0", 0, 20000)];
    for (let i = 1; i < 10000; i++) spans.push(span(`s${i}`, i, 20000 - i, { parent: `s${i - 1}` }));
    const path = criticalPath(buildTree(spans));
    expect(path.spans.size).toBe(10000);
  });
});
