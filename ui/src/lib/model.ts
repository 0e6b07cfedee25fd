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

export interface Trace {
  traceId: string;
  startUnixNs: bigint; // absolute time of relative 0
  spans: Span[];
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
  return { traceId: json?.traceId ?? "", startUnixNs: base, spans };
}

export function isError(s: Span): boolean {
  return s.status.code === "ERROR";
}
