import { describe, expect, it } from "vitest";
import { buildTree, descendantCount, flatten } from "../src/lib/tree";
import { span } from "./helpers";

describe("span tree", () => {
  const spans = [
    span("b", 5, 6, { parent: "root" }),
    span("root", 0, 10),
    span("a", 1, 3, { parent: "root" }),
    span("a1", 2, 3, { parent: "a" }),
    span("lost", 4, 5, { parent: "missing" }),
  ];

  it("orders children by start and flattens in preorder", () => {
    const tree = buildTree(spans);
    expect(flatten(tree).map((n) => n.span.spanId)).toEqual(["root", "a", "a1", "b", "lost"]);
    expect(tree.byId.get("a1")!.depth).toBe(2);
    expect(descendantCount(tree.byId.get("root")!)).toBe(3);
  });

  it("makes spans with a missing parent orphan roots", () => {
    const tree = buildTree(spans);
    expect(tree.roots.map((r) => r.span.spanId)).toEqual(["root", "lost"]);
    expect(tree.byId.get("lost")!.orphan).toBe(true);
  });

  it("skips the children of collapsed spans", () => {
    const tree = buildTree(spans);
    expect(flatten(tree, new Set(["a"])).map((n) => n.span.spanId)).toEqual(["root", "a", "b", "lost"]);
  });

  it("breaks parent cycles instead of losing spans", () => {
    const tree = buildTree([span("x", 0, 1, { parent: "y" }), span("y", 0, 1, { parent: "x" })]);
    expect(flatten(tree)).toHaveLength(2);
  });
});
