// Layout of the service graph with dagre (left to right), as plain numbers
// the SVG view draws.
import dagre from "@dagrejs/dagre";
import type { GraphEdge, GraphNode } from "./api";

export interface PlacedNode extends GraphNode {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PlacedEdge extends GraphEdge {
  points: { x: number; y: number }[];
  labelX: number;
  labelY: number;
}

export interface GraphLayout {
  width: number;
  height: number;
  nodes: PlacedNode[];
  edges: PlacedEdge[];
}

const nodeWidth = 170;
const nodeHeight = 54;
const labelWidth = 190;
const labelHeight = 34;

export function layoutGraph(nodes: GraphNode[], edges: GraphEdge[]): GraphLayout {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "LR", nodesep: 40, ranksep: 120, edgesep: 20, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  const known = new Set(nodes.map((n) => n.service));
  const all = [...nodes];
  for (const e of edges)
    for (const s of [e.from, e.to])
      if (!known.has(s)) {
        known.add(s);
        all.push({ service: s, spans: 0, errors: 0 });
      }
  for (const n of all) g.setNode(n.service, { width: nodeWidth, height: nodeHeight });
  edges.forEach((e, i) =>
    g.setEdge(e.from, e.to, { width: labelWidth, height: labelHeight, labelpos: "c" }, `${e.kind}-${i}`),
  );
  dagre.layout(g);
  const placed: PlacedNode[] = all.map((n) => {
    const p = g.node(n.service);
    return { ...n, x: p.x, y: p.y, width: nodeWidth, height: nodeHeight };
  });
  const placedEdges: PlacedEdge[] = edges.map((e, i) => {
    const p = g.edge({ v: e.from, w: e.to, name: `${e.kind}-${i}` }) as any;
    const points = (p?.points ?? []) as { x: number; y: number }[];
    const mid = points[Math.floor(points.length / 2)] ?? { x: 0, y: 0 };
    return { ...e, points, labelX: p?.x ?? mid.x, labelY: p?.y ?? mid.y };
  });
  const graph = g.graph();
  return { width: graph.width ?? 0, height: graph.height ?? 0, nodes: placed, edges: placedEdges };
}
