// Critical path of blocking work.
//
// The critical path of a span is the chain of work that decided when it
// ended: walking back from its end, the blocking child that finished last,
// then (recursively) that child's own critical path, then whatever ran before
// that child started, and so on; time no blocking child covers is the span's
// own (self) time. Asynchronous children (message hops: a PRODUCER's
// consumers, CONSUMER spans, and children that start after their parent
// ended) never block their parent, so they are not on its path. Each
// asynchronously started subtree is a piece of work of its own, with its own
// critical path, which is marked too.
import type { SpanNode, SpanTree } from "./tree";

export interface PathSegment {
  spanId: string;
  start: number; // ns
  end: number; // ns
}

export interface CriticalPath {
  segments: PathSegment[];
  /** Spans with at least one segment on a critical path. */
  spans: Set<string>;
  /** Roots of the pieces of blocking work (the trace roots and async starts). */
  entries: SpanNode[];
}

/** Blocking children of `n`, latest end first. */
function blockingChildren(n: SpanNode): SpanNode[] {
  return n.children.filter((c) => !c.async).sort((a, b) => b.span.end - a.span.end || b.span.start - a.span.start);
}

/** Critical path of the blocking work under `root`, latest segment first. */
export function criticalPathOf(root: SpanNode): PathSegment[] {
  const out: PathSegment[] = [];
  // Explicit stack (deep chains must not overflow the JS stack): each frame
  // is a span, the time its walk must stop at, and where it has got to.
  interface Frame {
    node: SpanNode;
    cursor: number;
    children: SpanNode[];
    next: number;
  }
  const push = (node: SpanNode, bound: number): Frame => ({
    node,
    cursor: Math.min(node.span.end, bound),
    children: blockingChildren(node),
    next: 0,
  });
  const stack: Frame[] = [push(root, Infinity)];
  while (stack.length) {
    const f = stack[stack.length - 1];
    const s = f.node.span;
    let child: SpanNode | undefined;
    while (f.next < f.children.length) {
      const c = f.children[f.next++];
      if (c.span.start < f.cursor && c.span.end > s.start) {
        child = c;
        break;
      }
    }
    if (!child || f.cursor <= s.start) {
      if (f.cursor > s.start) out.push({ spanId: s.spanId, start: s.start, end: f.cursor });
      stack.pop();
      continue;
    }
    const childEnd = Math.min(child.span.end, f.cursor);
    if (childEnd < f.cursor) out.push({ spanId: s.spanId, start: childEnd, end: f.cursor });
    f.cursor = Math.max(child.span.start, s.start);
    stack.push(push(child, childEnd));
  }
  return out;
}

export function criticalPath(tree: SpanTree): CriticalPath {
  const entries = tree.nodes.filter((n) => !n.parent || n.async);
  const segments: PathSegment[] = [];
  for (const e of entries) segments.push(...criticalPathOf(e));
  const spans = new Set(segments.map((s) => s.spanId));
  return { segments, spans, entries };
}

/** Segments per span id, for drawing. */
export function segmentsBySpan(path: CriticalPath): Map<string, PathSegment[]> {
  const out = new Map<string, PathSegment[]>();
  for (const s of path.segments) {
    const list = out.get(s.spanId);
    if (list) list.push(s);
    else out.set(s.spanId, [s]);
  }
  return out;
}
