// Summaries of Zipkin v2 traces (the search results of /api/v2/traces).

export interface ZipkinSpan {
  traceId: string;
  id: string;
  parentId?: string;
  name?: string;
  kind?: string;
  timestamp?: number; // µs
  duration?: number; // µs
  localEndpoint?: { serviceName?: string };
  remoteEndpoint?: { serviceName?: string };
  tags?: Record<string, string>;
}

export interface TraceSummary {
  traceId: string;
  rootService: string;
  rootName: string;
  startMs: number;
  durationNs: number;
  spanCount: number;
  errorCount: number;
  services: { name: string; spans: number }[];
}

export function isZipkinError(s: ZipkinSpan): boolean {
  return s.tags?.error !== undefined || s.tags?.["otel.status_code"] === "ERROR";
}

export function summarize(spans: ZipkinSpan[]): TraceSummary {
  const ids = new Set(spans.map((s) => s.id));
  let root: ZipkinSpan | undefined;
  let start = Infinity;
  let end = -Infinity;
  const services = new Map<string, number>();
  let errors = 0;
  for (const s of spans) {
    const ts = s.timestamp ?? 0;
    const dur = s.duration ?? 0;
    if (ts && ts < start) start = ts;
    if (ts + dur > end) end = ts + dur;
    const name = s.localEndpoint?.serviceName ?? "unknown";
    services.set(name, (services.get(name) ?? 0) + 1);
    if (isZipkinError(s)) errors++;
    const isRoot = !s.parentId || !ids.has(s.parentId);
    if (isRoot && (!root || (s.timestamp ?? Infinity) < (root.timestamp ?? Infinity))) root = s;
  }
  if (!Number.isFinite(start)) start = 0;
  return {
    traceId: spans[0]?.traceId ?? "",
    rootService: root?.localEndpoint?.serviceName ?? "unknown",
    rootName: root?.name ?? "",
    startMs: start / 1000,
    durationNs: Math.max(0, end - start) * 1000,
    spanCount: spans.length,
    errorCount: errors,
    services: [...services.entries()]
      .map(([name, count]) => ({ name, spans: count }))
      .sort((a, b) => b.spans - a.spans || a.name.localeCompare(b.name)),
  };
}
