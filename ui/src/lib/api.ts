// The collector's HTTP API, as the UI uses it (same origin).
import { decodeCompactTrace, type Trace } from "./model";
import type { ZipkinSpan } from "./search";

/** A failed request: status 404 on an endpoint this collector does not have. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function getJson<T>(url: string, early?: Promise<Response>): Promise<T> {
  const resp = await (early ?? fetch(url, { headers: { Accept: "application/json" } }));
  const text = await resp.text();
  if (!resp.ok) {
    let message = text;
    try {
      message = JSON.parse(text).message ?? text;
    } catch {
      // plain-text errors (Zipkin's validation messages)
    }
    throw new ApiError(resp.status, message || `${resp.status} ${resp.statusText}`);
  }
  return JSON.parse(text) as T;
}

export const api = {
  services: () => getJson<string[]>("/api/v2/services"),
  spanNames: (service: string) =>
    getJson<string[]>(`/api/v2/spans?serviceName=${encodeURIComponent(service)}`),
  traces: (params: URLSearchParams) => getJson<ZipkinSpan[][]>(`/api/v2/traces?${params}`),
  trace: async (id: string): Promise<Trace> => {
    // index.html starts the first trace page's request before this bundle runs; use it once.
    const early = window.__outriderEarlyTrace?.id === id ? window.__outriderEarlyTrace.response : undefined;
    window.__outriderEarlyTrace = undefined;
    const json = await getJson(`/api/outrider/v1/trace/${encodeURIComponent(id)}?format=compact`, early);
    performance.mark("trace:parsed");
    const trace = decodeCompactTrace(json);
    performance.mark("trace:decoded");
    return trace;
  },
  graph: (endTs: number, lookback: number) =>
    getJson<GraphResponse>(`/api/outrider/v1/graph?endTs=${endTs}&lookback=${lookback}`),
  analysis: (endTs: number, lookback: number) =>
    getJson<AnalysisResponse>(`/api/outrider/v1/analysis?endTs=${endTs}&lookback=${lookback}`),
};

export interface GraphNode {
  service: string;
  spans: number;
  errors: number;
}

export interface GraphEdge {
  from: string;
  to: string;
  kind: "sync" | "async";
  calls: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

export interface GraphResponse {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export interface EntryPoint {
  service: string;
  operation: string;
  traces: number;
  score: number;
  syncDepth: { max: number; p50: number };
  fanOut: { max: number };
  syncShare: number;
  availability: number;
  exampleTraceIds: string[];
}

export interface Finding {
  severity: "high" | "medium" | "low";
  kind: string;
  text: string;
  entryPoint?: string;
  services: string[];
  metrics: Record<string, unknown>;
  exampleTraceIds: string[];
}

export interface AnalysisResponse {
  window: { startMs: number; endMs: number };
  traces: number;
  entryPoints: EntryPoint[];
  findings: Finding[];
  cycles: string[][];
}
