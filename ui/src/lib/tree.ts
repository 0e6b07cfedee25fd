// Span tree: parent/child structure of a trace and its flattening into the
// rows of the waterfall. Spans whose parent is not in the trace (lost or not
// yet arrived) become extra roots, marked as orphans.
import type { Span } from "./model";

export interface SpanNode {
  span: Span;
  index: number; // position in Trace.spans
  parent?: SpanNode;
  children: SpanNode[]; // sorted by start, then end
  depth: number;
  orphan: boolean; // has a parentId that is not in the trace
  /** True when this span was started by its parent asynchronously (a message). */
  async: boolean;
}

export interface SpanTree {
  roots: SpanNode[];
  nodes: SpanNode[]; // same order as Trace.spans
  byId: Map<string, SpanNode>;
}

/**
 * A parent→child edge is asynchronous (not blocking the parent) when it is a
 * message hop (PRODUCER parent or CONSUMER child) or when the child starts only
 * after the parent has ended (follows-from).
 */
export function isAsyncEdge(parent: Span, child: Span): boolean {
  return parent.kind === "PRODUCER" || child.kind === "CONSUMER" || child.start >= parent.end;
}

const byStart = (a: SpanNode, b: SpanNode) =>
  a.span.start - b.span.start || a.span.end - b.span.end || a.index - b.index;

export function buildTree(spans: Span[]): SpanTree {
  const nodes: SpanNode[] = spans.map((span, index) => ({
    span,
    index,
    children: [],
    depth: 0,
    orphan: false,
    async: false,
  }));
  const byId = new Map<string, SpanNode>();
  for (const n of nodes) {
    // Duplicate span ids (a client and server sharing one id in Zipkin's B3
    // style): the first wins the id; later ones hang under it.
    if (!byId.has(n.span.spanId)) byId.set(n.span.spanId, n);
  }
  const roots: SpanNode[] = [];
  for (const n of nodes) {
    let parent = n.span.parentId ? byId.get(n.span.parentId) : undefined;
    if (!parent && byId.get(n.span.spanId) !== n) parent = byId.get(n.span.spanId);
    if (parent && parent !== n) {
      n.parent = parent;
      n.async = isAsyncEdge(parent.span, n.span);
      parent.children.push(n);
    } else {
      n.orphan = n.span.parentId !== undefined;
      roots.push(n);
    }
  }
  // A cycle in parent ids (corrupt data) would leave spans unreachable from a
  // root: detach them as extra roots.
  const reached = new Set<SpanNode>();
  const visit = (start: SpanNode) => {
    const stack = [start];
    while (stack.length) {
      const n = stack.pop()!;
      if (reached.has(n)) continue;
      reached.add(n);
      n.children.sort(byStart);
      for (const c of n.children) {
        c.depth = n.depth + 1;
        stack.push(c);
      }
    }
  };
  roots.sort(byStart);
  for (const r of roots) visit(r);
  for (const n of nodes) {
    if (!reached.has(n)) {
      if (n.parent) n.parent.children = n.parent.children.filter((c) => c !== n);
      n.parent = undefined;
      n.orphan = true;
      n.depth = 0;
      roots.push(n);
      visit(n);
    }
  }
  return { roots, nodes, byId };
}

/** Preorder rows of the tree, skipping the children of collapsed spans. */
export function flatten(tree: SpanTree, collapsed: ReadonlySet<string> = new Set()): SpanNode[] {
  const rows: SpanNode[] = [];
  const stack = [...tree.roots].reverse();
  while (stack.length) {
    const n = stack.pop()!;
    rows.push(n);
    if (collapsed.has(n.span.spanId)) continue;
    for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
  }
  return rows;
}

/** Number of spans under `n` (excluding n). */
export function descendantCount(n: SpanNode): number {
  let count = 0;
  const stack = [...n.children];
  while (stack.length) {
    const c = stack.pop()!;
    count++;
    stack.push(...c.children);
  }
  return count;
}
