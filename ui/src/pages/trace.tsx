// Trace view: a virtualized waterfall on a time axis that folds long quiet
// stretches, with the critical path of blocking work marked, links between
// spans and traces to follow, and the details of the selected span.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api } from "../lib/api";
import { criticalPath, segmentsBySpan } from "../lib/critical_path";
import { formatDuration, formatTimestamp } from "../lib/format";
import { axisForSpans } from "../lib/gaps";
import { isError, type IncomingLink, type Span, type Trace } from "../lib/model";
import { buildTree, flatten, type SpanNode } from "../lib/tree";
import { barFor, criticalMarks, ticks, visibleRange } from "../lib/waterfall";
import { Link, navigate } from "../router";
import { ErrorBox, type Load } from "./common";

const rowHeight = 22;

export function serviceColor(service: string): string {
  let h = 0;
  for (let i = 0; i < service.length; i++) h = (h * 31 + service.charCodeAt(i)) >>> 0;
  return `hsl(${h % 360} 55% 55%)`;
}

export function TracePage(props: { traceId: string; focus?: string }) {
  const [load, setLoad] = useState<Load<Trace>>({ state: "loading" });
  useEffect(() => {
    setLoad({ state: "loading" });
    api.trace(props.traceId).then(
      (value) => setLoad({ state: "ok", value }),
      (error) => setLoad({ state: "error", error }),
    );
  }, [props.traceId]);
  if (load.state === "loading") return <p class="hint">Loading trace {props.traceId}…</p>;
  if (load.state === "error") return <ErrorBox error={load.error} what="trace" />;
  return <TraceView trace={load.value} focus={props.focus} />;
}

function TraceView(props: { trace: Trace; focus?: string }) {
  const { trace } = props;
  const [fold, setFold] = useState(true);
  const [showCritical, setShowCritical] = useState(true);
  const [collapsed, setCollapsed] = useState<Set<string>>(() => new Set());
  const [selected, setSelected] = useState<string | undefined>(props.focus);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  const scroller = useRef<HTMLDivElement>(null);

  const tree = useMemo(() => buildTree(trace.spans), [trace]);
  const axis = useMemo(() => axisForSpans(trace.spans, fold), [trace, fold]);
  const path = useMemo(() => criticalPath(tree), [tree]);
  const pathBySpan = useMemo(() => segmentsBySpan(path), [path]);
  const rows = useMemo(() => flatten(tree, collapsed), [tree, collapsed]);
  const incoming = useMemo(() => {
    const m = new Map<string, Span[]>();
    for (const s of trace.spans)
      for (const l of s.links)
        if (l.traceId === trace.traceId) m.set(l.spanId, [...(m.get(l.spanId) ?? []), s]);
    return m;
  }, [trace]);
  // Spans of other traces linking into this one, by the span they link to.
  const linkedFrom = useMemo(() => {
    const m = new Map<string, IncomingLink[]>();
    for (const l of trace.linkedFrom) m.set(l.targetSpanId, [...(m.get(l.targetSpanId) ?? []), l]);
    return m;
  }, [trace]);

  useEffect(() => {
    // For measurements (ui/test/browser/measure.mjs): the first rows are in the DOM.
    performance.mark("trace:rendered");
  }, []);

  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const resize = () => setViewport(el.clientHeight);
    resize();
    const observer = new ResizeObserver(resize);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  // Selecting a span (also from a link or ?span=) expands its ancestors and scrolls to it.
  const reveal = (spanId: string) => {
    const node = tree.byId.get(spanId);
    if (!node) return;
    const open = new Set(collapsed);
    for (let p = node.parent; p; p = p.parent) open.delete(p.span.spanId);
    setCollapsed(open);
    setSelected(spanId);
    const index = flatten(tree, open).indexOf(node);
    const el = scroller.current;
    if (el && index >= 0) {
      const top = index * rowHeight;
      if (top < el.scrollTop || top > el.scrollTop + el.clientHeight - 3 * rowHeight)
        el.scrollTop = Math.max(0, top - el.clientHeight / 3);
    }
  };
  useEffect(() => {
    if (props.focus) reveal(props.focus);
  }, [props.focus, tree]);

  const root = tree.roots[0]?.span;
  const duration = axis.end - axis.start;
  const services = new Set(trace.spans.map((s) => s.service));
  const errors = trace.spans.filter(isError).length;
  const { first, last } = visibleRange(scrollTop, viewport, rowHeight, rows.length);
  const selectedNode = selected ? tree.byId.get(selected) : undefined;
  const axisTicks = ticks(axis);

  return (
    <div class="page trace">
      <div class="trace-header">
        <h2>
          {root ? (
            <>
              <span style={{ color: serviceColor(root.service) }}>{root.service}</span>: {root.name}
            </>
          ) : (
            "empty trace"
          )}
        </h2>
        <div class="facts">
          <span>
            trace <code data-testid="trace-id">{trace.traceId}</code>
          </span>
          <span>started {formatTimestamp(Number(trace.startUnixNs / 1000000n))}</span>
          <span>
            duration <strong>{formatDuration(duration)}</strong>
          </span>
          <span>{trace.spans.length} spans</span>
          <span>{services.size} services</span>
          {errors > 0 && <span class="error-mark">⚠ {errors} errors</span>}
          {trace.linkedFrom.length > 0 && (
            <span class="linked-from-fact" data-testid="linked-from-summary">
              ⇠ linked from {trace.linkedFrom.length} {trace.linkedFrom.length === 1 ? "span" : "spans"} of other
              traces:{" "}
              {trace.linkedFrom.slice(0, 5).map((l, i) => (
                <>
                  {i > 0 && ", "}
                  <Link href={`/trace/${l.traceId}?span=${l.spanId}`} title={`trace ${l.traceId}`}>
                    {l.service}: {l.name}
                  </Link>
                </>
              ))}
              {trace.linkedFrom.length > 5 && ` and ${trace.linkedFrom.length - 5} more`}
            </span>
          )}
          {axis.folds.length > 0 && (
            <span class="fold-fact" data-testid="fold-summary">
              {axis.folds.length} folded {axis.folds.length === 1 ? "gap" : "gaps"}:{" "}
              {axis.folds.map((f) => formatDuration(f.end - f.start)).join(", ")}
            </span>
          )}
        </div>
        <div class="toggles">
          <label>
            <input type="checkbox" checked={fold} onChange={() => setFold(!fold)} /> fold long gaps
          </label>
          <label>
            <input type="checkbox" checked={showCritical} onChange={() => setShowCritical(!showCritical)} />{" "}
            <span class="critical-swatch" /> critical path ({path.spans.size} spans)
          </label>
          <button onClick={() => setCollapsed(new Set())}>expand all</button>
          <button
            onClick={() => setCollapsed(new Set(tree.nodes.filter((n) => n.children.length && n.depth >= 1).map((n) => n.span.spanId)))}
          >
            collapse to depth 1
          </button>
        </div>
      </div>
      <div class={`trace-body ${selectedNode ? "with-details" : ""}`}>
        <div class="waterfall">
          <div class="ruler">
            <div class="label-col">service: span</div>
            <div class="time-col">
              {axisTicks.map((t) => (
                <span class="tick" style={{ left: `${t.x * 100}%` }}>
                  {t.label}
                </span>
              ))}
              {axis.folds.map((f) => (
                <span
                  class="fold-label"
                  data-testid="fold"
                  title={`${formatDuration(f.end - f.start)} with no span starting or ending, folded`}
                  style={{ left: `${f.x0 * 100}%`, width: `${(f.x1 - f.x0) * 100}%` }}
                >
                  ≈ {formatDuration(f.end - f.start)}
                </span>
              ))}
            </div>
          </div>
          <div
            class="rows"
            ref={scroller}
            data-testid="waterfall"
            onScroll={(e) => setScrollTop((e.target as HTMLDivElement).scrollTop)}
          >
            <div class="rows-inner" style={{ height: `${rows.length * rowHeight}px` }}>
              <div class="fold-bands">
                {axis.folds.map((f) => (
                  <div class="fold-band" style={{ left: `${f.x0 * 100}%`, width: `${(f.x1 - f.x0) * 100}%` }} />
                ))}
              </div>
              {rows.slice(first, last).map((n, i) => (
                <Row
                  key={n.span.spanId + n.index}
                  node={n}
                  top={(first + i) * rowHeight}
                  axis={axis}
                  critical={showCritical ? pathBySpan.get(n.span.spanId) : undefined}
                  linkedFrom={linkedFrom.get(n.span.spanId)?.length ?? 0}
                  collapsed={collapsed.has(n.span.spanId)}
                  selected={n.span.spanId === selected}
                  onToggle={() => {
                    const next = new Set(collapsed);
                    if (next.has(n.span.spanId)) next.delete(n.span.spanId);
                    else next.add(n.span.spanId);
                    setCollapsed(next);
                  }}
                  onSelect={() => setSelected(n.span.spanId === selected ? undefined : n.span.spanId)}
                />
              ))}
            </div>
          </div>
        </div>
        {selectedNode && (
          <Details
            node={selectedNode}
            trace={trace}
            critical={path.spans.has(selectedNode.span.spanId)}
            incoming={incoming.get(selectedNode.span.spanId) ?? []}
            linkedFrom={linkedFrom.get(selectedNode.span.spanId) ?? []}
            onGo={reveal}
            onClose={() => setSelected(undefined)}
          />
        )}
      </div>
    </div>
  );
}

function Row(props: {
  node: SpanNode;
  top: number;
  axis: ReturnType<typeof axisForSpans>;
  critical?: { spanId: string; start: number; end: number }[];
  collapsed: boolean;
  selected: boolean;
  linkedFrom: number;
  onToggle: () => void;
  onSelect: () => void;
}) {
  const { node, axis } = props;
  const s = node.span;
  const bar = barFor(s.start, s.end, axis);
  const marks = criticalMarks(props.critical, axis);
  const color = serviceColor(s.service);
  const classes = ["row", props.selected ? "selected" : "", isError(s) ? "error" : "", props.critical ? "on-critical" : ""];
  return (
    <div class={classes.join(" ")} style={{ top: `${props.top}px` }} onClick={props.onSelect} data-span-id={s.spanId}>
      <div class="label-col" style={{ paddingLeft: `${4 + Math.min(node.depth, 40) * 12}px` }}>
        {node.children.length > 0 ? (
          <button
            class="toggle"
            title={props.collapsed ? "expand" : "collapse"}
            onClick={(e) => {
              e.stopPropagation();
              props.onToggle();
            }}
          >
            {props.collapsed ? "▸" : "▾"}
          </button>
        ) : (
          <span class="toggle" />
        )}
        {node.async && (
          <span class="async-mark" title="started asynchronously by its parent (message hop): not blocking">
            ⇢
          </span>
        )}
        {node.orphan && (
          <span class="orphan-mark" title="its parent span is not in this trace">
            ◌
          </span>
        )}
        <span class="service" style={{ color }}>
          {s.service}
        </span>{" "}
        <span class="name">{s.name}</span>
        {s.links.length > 0 && (
          <span class="link-mark" title="links to other spans or traces: select the span to follow them">
            ⇄ {s.links.length} {s.links.length === 1 ? "link" : "links"}
          </span>
        )}
        {props.linkedFrom > 0 && (
          <span class="link-mark" title="spans of other traces link here: select the span to follow them">
            ⇠ {props.linkedFrom} from other traces
          </span>
        )}
        {props.collapsed && <span class="hidden-count">+{node.children.length}</span>}
      </div>
      <div class="time-col">
        <div
          class="bar"
          style={{ left: `${bar.left * 100}%`, width: `${bar.width * 100}%`, background: color }}
          title={`${s.service}: ${s.name} ${formatDuration(s.end - s.start)}`}
        />
        {marks.map((m) => (
          <div class="critical" data-testid="critical" style={{ left: `${m.left * 100}%`, width: `${m.width * 100}%` }} />
        ))}
        <span
          class={`bar-label ${bar.left > 0.8 ? "left" : ""}`}
          style={bar.left > 0.8 ? { right: `${(1 - bar.left) * 100}%` } : { left: `${(bar.left + bar.width) * 100}%` }}
        >
          {formatDuration(s.end - s.start)}
        </span>
      </div>
    </div>
  );
}

function AttributeTable(props: { attributes: { key: string; value: string }[] }) {
  if (!props.attributes.length) return <p class="hint">none</p>;
  return (
    <table class="attributes">
      {props.attributes.map((a) => (
        <tr>
          <th>{a.key}</th>
          <td>{a.value}</td>
        </tr>
      ))}
    </table>
  );
}

function Details(props: {
  node: SpanNode;
  trace: Trace;
  critical: boolean;
  incoming: Span[];
  linkedFrom: IncomingLink[];
  onGo: (spanId: string) => void;
  onClose: () => void;
}) {
  const s = props.node.span;
  const base = props.trace.startUnixNs;
  const absolute = (rel: number) => formatTimestamp(Number((base + BigInt(Math.round(rel))) / 1000000n));
  const parent = props.node.parent?.span;
  return (
    <aside class="details" data-testid="details">
      <button class="close" onClick={props.onClose} title="close">
        ×
      </button>
      <h3>
        <span style={{ color: serviceColor(s.service) }}>{s.service}</span>: {s.name}
      </h3>
      <table class="attributes">
        <tr>
          <th>kind</th>
          <td>{s.kind}</td>
        </tr>
        <tr>
          <th>duration</th>
          <td>{formatDuration(s.end - s.start)}</td>
        </tr>
        <tr>
          <th>start</th>
          <td>
            {absolute(s.start)} (+{formatDuration(s.start)})
          </td>
        </tr>
        <tr>
          <th>status</th>
          <td class={s.status.code === "ERROR" ? "error-mark" : ""}>
            {s.status.code}
            {s.status.message ? `: ${s.status.message}` : ""}
          </td>
        </tr>
        <tr>
          <th>span id</th>
          <td>
            <code>{s.spanId}</code>
          </td>
        </tr>
        {parent && (
          <tr>
            <th>parent</th>
            <td>
              <a href="#" onClick={(e) => (e.preventDefault(), props.onGo(parent.spanId))}>
                {parent.service}: {parent.name}
              </a>
              {props.node.async ? " (asynchronous: not blocking)" : " (blocking)"}
            </td>
          </tr>
        )}
        {s.remoteService && (
          <tr>
            <th>remote service</th>
            <td>{s.remoteService}</td>
          </tr>
        )}
        <tr>
          <th>critical path</th>
          <td>{props.critical ? "on the critical path" : "not on the critical path"}</td>
        </tr>
      </table>
      <h4>Links ({s.links.length})</h4>
      {s.links.length === 0 && <p class="hint">none</p>}
      <ul class="links" data-testid="links">
        {s.links.map((l) => {
          const here = l.traceId === props.trace.traceId;
          const target = here ? props.trace.spans.find((x) => x.spanId === l.spanId) : undefined;
          return (
            <li>
              {here ? (
                target ? (
                  <a href="#" onClick={(e) => (e.preventDefault(), props.onGo(l.spanId))}>
                    → {target.service}: {target.name}
                  </a>
                ) : (
                  <span>→ span {l.spanId} (not in this trace)</span>
                )
              ) : (
                <Link href={`/trace/${l.traceId}?span=${l.spanId}`} title="open the linked trace">
                  → trace {l.traceId.slice(0, 12)}… span {l.spanId}
                </Link>
              )}
              {l.attributes.length > 0 && <AttributeTable attributes={l.attributes} />}
            </li>
          );
        })}
      </ul>
      {props.incoming.length > 0 && (
        <>
          <h4>Linked from ({props.incoming.length})</h4>
          <ul class="links">
            {props.incoming.map((x) => (
              <li>
                <a href="#" onClick={(e) => (e.preventDefault(), props.onGo(x.spanId))}>
                  ← {x.service}: {x.name}
                </a>
              </li>
            ))}
          </ul>
        </>
      )}
      {props.linkedFrom.length > 0 && (
        <>
          <h4>Linked from other traces ({props.linkedFrom.length})</h4>
          <ul class="links" data-testid="linked-from">
            {props.linkedFrom.map((l) => (
              <li>
                <Link href={`/trace/${l.traceId}?span=${l.spanId}`} title="open the linking trace">
                  ← {l.service}: {l.name} (trace {l.traceId.slice(0, 12)}…)
                </Link>
              </li>
            ))}
          </ul>
        </>
      )}
      <h4>Attributes ({s.attributes.length})</h4>
      <AttributeTable attributes={s.attributes} />
      <h4>Events ({s.events.length})</h4>
      {s.events.length === 0 && <p class="hint">none</p>}
      {s.events.map((e) => (
        <div class="event">
          <div>
            <strong>{e.name}</strong> at +{formatDuration(e.time - s.start)}
          </div>
          {e.attributes.length > 0 && <AttributeTable attributes={e.attributes} />}
        </div>
      ))}
      <h4>Resource</h4>
      <AttributeTable attributes={s.resource} />
      {s.scope && s.scope.name && (
        <p class="hint">
          scope {s.scope.name} {s.scope.version}
        </p>
      )}
      <p>
        <a
          href="#"
          onClick={(e) => {
            e.preventDefault();
            navigate(`/?search=1&serviceName=${encodeURIComponent(s.service.toLowerCase())}`);
          }}
        >
          other traces of {s.service}
        </a>
      </p>
    </aside>
  );
}
