import type { Span, SpanKind } from "../src/lib/model";

export function span(
  spanId: string,
  start: number,
  end: number,
  opts: { parent?: string; kind?: SpanKind; service?: string; name?: string } = {},
): Span {
  return {
    traceId: "t",
    spanId,
    parentId: opts.parent,
    name: opts.name ?? spanId,
    service: opts.service ?? "svc",
    kind: opts.kind ?? "INTERNAL",
    start,
    end,
    attributes: [],
    events: [],
    links: [],
    status: { code: "UNSET" },
    resource: [],
  };
}

export const ms = 1e6;
export const day = 86400e9;
