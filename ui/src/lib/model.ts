// The trace model the UI works on, decoded from the collector's native JSON
// (GET /api/outrider/v1/trace/{id}). Times are nanoseconds relative to the
// trace's earliest span start, as plain numbers (exact up to ~104 days;
// absolute Unix nanoseconds would not fit a double).

export type SpanKind = "UNSPECIFIED" | "INTERNAL" | "SERVER" | "CLIENT" | "PRODUCER" | "CONSUMER";

export interface Attribute {
  key: string;
  value: string; // display form
}

export interface SpanEvent {
  time: number; // relative ns
  name: string;
  attributes: Attribute[];
}

export interface SpanLink {
  traceId: string;
  spanId: string;
  attributes: Attribute[];
}

export interface Span {
  traceId: string;
  spanId: string;
  parentId?: string;
  name: string;
  service: string;
  kind: SpanKind;
  start: number; // relative ns
  end: number; // relative ns (>= start)
  attributes: Attribute[];
  events: SpanEvent[];
  links: SpanLink[];
  status: { code: "UNSET" | "OK" | "ERROR"; message?: string };
  resource: Attribute[];
  scope?: { name: string; version: string };
  remoteService?: string;
}

/** A span of another trace whose link points into this trace. */
export interface IncomingLink {
  traceId: string;
  spanId: string;
  name: string;
  service: string;
  targetSpanId: string; // the span of this trace it links to
}

export interface Trace {
  traceId: string;
  startUnixNs: bigint; // absolute time of relative 0
  spans: Span[];
  /** Spans of other traces linking into this one (the compact format carries them). */
  linkedFrom: IncomingLink[];
}

/** OTLP/JSON AnyValue (as the native endpoint writes it) → display text. */
export function anyValueText(v: unknown): string {
  if (v === null || typeof v !== "object") return String(v ?? "");
  const o = v as Record<string, unknown>;
  if ("stringValue" in o) return String(o.stringValue);
  if ("boolValue" in o) return String(o.boolValue);
  if ("intValue" in o) return String(o.intValue);
  if ("doubleValue" in o) return String(o.doubleValue);
  if ("bytesValue" in o) return `base64:${String(o.bytesValue)}`;
  if ("arrayValue" in o) {
    const values = ((o.arrayValue as { values?: unknown[] })?.values ?? []).map(anyValueText);
    return `[${values.join(", ")}]`;
  }
  if ("kvlistValue" in o) {
    const values = (o.kvlistValue as { values?: { key: string; value: unknown }[] })?.values ?? [];
    return `{${values.map((kv) => `${kv.key}: ${anyValueText(kv.value)}`).join(", ")}}`;
  }
  return JSON.stringify(v);
}

function attributes(list: unknown): Attribute[] {
  if (!Array.isArray(list)) return [];
  return list.map((a: { key: string; value: unknown }) => ({ key: a.key, value: anyValueText(a.value) }));
}

function ns(text: unknown): bigint {
  try {
    return BigInt(String(text ?? "0"));
  } catch {
    return 0n;
  }
}

/** Decodes the native trace JSON ({traceId, spans:[...]}). */
export function decodeNativeTrace(json: any): Trace {
  const raw: any[] = Array.isArray(json?.spans) ? json.spans : [];
  let min: bigint | undefined;
  for (const s of raw) {
    const start = ns(s.startTimeUnixNano);
    if (min === undefined || start < min) min = start;
  }
  const base = min ?? 0n;
  const spans: Span[] = raw.map((s) => {
    const start = Number(ns(s.startTimeUnixNano) - base);
    const end = Math.max(start, Number(ns(s.endTimeUnixNano) - base));
    return {
      traceId: s.traceId,
      spanId: s.spanId,
      parentId: s.parentSpanId || undefined,
      name: s.name ?? "",
      service: s.serviceName ?? "unknown_service",
      kind: (s.kind ?? "UNSPECIFIED") as SpanKind,
      start,
      end,
      attributes: attributes(s.attributes),
      events: (s.events ?? []).map((e: any) => ({
        time: Number(ns(e.timeUnixNano) - base),
        name: e.name ?? "",
        attributes: attributes(e.attributes),
      })),
      links: (s.links ?? []).map((l: any) => ({
        traceId: l.traceId,
        spanId: l.spanId,
        attributes: attributes(l.attributes),
      })),
      status: { code: s.status?.code ?? "UNSET", message: s.status?.message },
      resource: attributes(s.resource?.attributes),
      scope: s.scope ? { name: s.scope.name ?? "", version: s.scope.version ?? "" } : undefined,
      remoteService: s.remoteEndpoint?.serviceName || undefined,
    };
  });
  return { traceId: json?.traceId ?? "", startUnixNs: base, spans, linkedFrom: [] };
}

const kinds: SpanKind[] = ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"];
const statusCodes = ["UNSET", "OK", "ERROR"] as const;

/**
 * Decodes the compact trace JSON (GET /api/outrider/v1/trace/{id}?format=compact,
 * docs/formats/compact-trace.md): a string table, a resource table and one array
 * per span, with times already relative to the trace's start (no BigInt per span).
 */
export function decodeCompactTrace(json: any): Trace {
  const strings: string[] = json.strings ?? [""];
  const str = (i: number) => strings[i] ?? "";
  const attrs = (list: number[] | undefined): Attribute[] => {
    const out: Attribute[] = [];
    if (list) for (let i = 0; i + 1 < list.length; i += 2) out.push({ key: str(list[i]), value: str(list[i + 1]) });
    return out;
  };
  const resources = (json.resources ?? []).map((r: any[]) => ({
    attributes: attrs(r[0]),
    scope: { name: str(r[1]), version: str(r[2]) },
  }));
  const traceId: string = json.traceId ?? "";
  const raw: any[][] = json.spans ?? [];
  const spans: Span[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const r = raw[i];
    const start: number = r[5];
    const resource = r[9] >= 0 ? resources[r[9]] : undefined;
    const ev: any[] = r[12] ?? [];
    const events: SpanEvent[] = [];
    for (let e = 0; e + 2 < ev.length; e += 3) events.push({ time: ev[e], name: str(ev[e + 1]), attributes: attrs(ev[e + 2]) });
    const ln: any[] = r[13] ?? [];
    const links: SpanLink[] = [];
    for (let l = 0; l + 2 < ln.length; l += 3) links.push({ traceId: str(ln[l]), spanId: ln[l + 1], attributes: attrs(ln[l + 2]) });
    const message = str(r[8]);
    spans[i] = {
      traceId,
      spanId: r[0],
      parentId: r[1] || undefined,
      name: str(r[2]),
      service: str(r[3]) || "unknown_service",
      kind: kinds[r[4]] ?? "UNSPECIFIED",
      start,
      end: start + r[6],
      attributes: attrs(r[11]),
      events,
      links,
      status: { code: statusCodes[r[7]] ?? "UNSET", message: message || undefined },
      resource: resource?.attributes ?? [],
      scope: resource?.scope,
      remoteService: str(r[10]) || undefined,
    };
  }
  const linkedFrom: IncomingLink[] = (json.linkedFrom ?? []).map((l: any[]) => ({
    traceId: str(l[0]),
    spanId: l[1],
    name: str(l[2]),
    service: str(l[3]),
    targetSpanId: l[4],
  }));
  let base = 0n;
  try {
    base = BigInt(json.base ?? "0");
  } catch {
    // keep 0
  }
  return { traceId, startUnixNs: base, spans, linkedFrom };
}

export function isError(s: Span): boolean {
  return s.status.code === "ERROR";
}
