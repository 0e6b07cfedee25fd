// Service graph: services as nodes, calls between them as edges labelled
// sync (HTTP/invoke) or async (messaging) with call rate, error rate and
// latency, over a chosen time window (GET /api/outrider/v1/graph).
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, type GraphResponse } from "../lib/api";
import { formatDuration, formatPercent } from "../lib/format";
import { layoutGraph } from "../lib/graph_layout";
import { navigate } from "../router";
import { ErrorBox, type Load, WindowPicker } from "./common";
import { serviceColor } from "./trace";

function ratePerMinute(calls: number, lookbackMs: number): string {
  const perMin = calls / (lookbackMs / 60e3);
  return perMin >= 10 ? `${perMin.toFixed(0)}/min` : perMin >= 0.1 ? `${perMin.toFixed(1)}/min` : `${calls} ${calls === 1 ? "call" : "calls"}`;
}

export function GraphPage(props: { query: URLSearchParams }) {
  const lookback = Number(props.query.get("lookback") ?? 3600e3);
  const [load, setLoad] = useState<Load<GraphResponse>>({ state: "loading" });
  useEffect(() => {
    setLoad({ state: "loading" });
    api.graph(Date.now(), lookback).then(
      (value) => setLoad({ state: "ok", value }),
      (error) => setLoad({ state: "error", error }),
    );
  }, [lookback]);
  return (
    <div class="page graph">
      <div class="page-bar">
        <h2>Service graph</h2>
        <WindowPicker lookback={lookback} onChange={(ms) => navigate(`/graph?lookback=${ms}`)} />
        <span class="legend">
          <svg width="40" height="10">
            <line x1="0" y1="5" x2="40" y2="5" class="edge sync" />
          </svg>{" "}
          sync (HTTP/invoke: the caller waits){" "}
          <svg width="40" height="10">
            <line x1="0" y1="5" x2="40" y2="5" class="edge async" />
          </svg>{" "}
          async (messaging)
        </span>
      </div>
      {load.state === "loading" && <p class="hint">Loading…</p>}
      {load.state === "error" && <ErrorBox error={load.error} what="service graph" />}
      {load.state === "ok" && <Graph graph={load.value} lookback={lookback} />}
    </div>
  );
}

function Graph(props: { graph: GraphResponse; lookback: number }) {
  const layout = useMemo(() => layoutGraph(props.graph.nodes, props.graph.edges), [props.graph]);
  if (!layout.nodes.length) return <p class="hint">No spans in this window.</p>;
  return (
    <svg class="service-graph" data-testid="service-graph" width={layout.width} height={layout.height}>
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" fill="#555" />
        </marker>
      </defs>
      {layout.edges.map((e) => (
        <g class={`edge-group ${e.kind}`} data-testid={`edge-${e.kind}`}>
          <polyline
            class={`edge ${e.kind} ${e.errors > 0 ? "with-errors" : ""}`}
            points={e.points.map((p) => `${p.x},${p.y}`).join(" ")}
            marker-end="url(#arrow)"
          />
          <text x={e.labelX} y={e.labelY - 6} class="edge-label">
            {e.kind} · {ratePerMinute(e.calls, props.lookback)} · {formatPercent(e.calls ? e.errors / e.calls : 0)} err
          </text>
          <text x={e.labelX} y={e.labelY + 8} class="edge-label">
            p50 {formatDuration(e.p50Ms * 1e6)} · p99 {formatDuration(e.p99Ms * 1e6)}
          </text>
        </g>
      ))}
      {layout.nodes.map((n) => (
        <g
          class="node"
          transform={`translate(${n.x - n.width / 2},${n.y - n.height / 2})`}
          onClick={() => navigate(`/?search=1&serviceName=${encodeURIComponent(n.service)}`)}
        >
          <rect width={n.width} height={n.height} rx="6" style={{ stroke: serviceColor(n.service) }} />
          <text x={n.width / 2} y="22" class="node-name">
            {n.service}
          </text>
          <text x={n.width / 2} y="40" class={`node-stats ${n.errors ? "error-mark" : ""}`}>
            {n.spans} spans{n.errors ? ` · ${n.errors} errors` : ""}
          </text>
        </g>
      ))}
    </svg>
  );
}
