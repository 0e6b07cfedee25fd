// Search: Zipkin v2 query (service, span name, tags, duration, time range)
// → trace summaries. The query lives in the URL so results can be shared.
import { useEffect, useState } from "preact/hooks";
import { api } from "../lib/api";
import { formatDuration, formatTimestamp } from "../lib/format";
import { summarize, type TraceSummary } from "../lib/search";
import { Link, navigate } from "../router";
import { ErrorBox, type Load, windows } from "./common";

interface Form {
  serviceName: string;
  spanName: string;
  annotationQuery: string;
  minMs: string;
  maxMs: string;
  lookback: string;
  end: string; // datetime-local, empty: now
  limit: string;
}

function formFromQuery(q: URLSearchParams): Form {
  return {
    serviceName: q.get("serviceName") ?? "",
    spanName: q.get("spanName") ?? "",
    annotationQuery: q.get("annotationQuery") ?? "",
    minMs: q.get("minMs") ?? "",
    maxMs: q.get("maxMs") ?? "",
    lookback: q.get("lookback") ?? String(86400e3),
    end: q.get("end") ?? "",
    limit: q.get("limit") ?? "20",
  };
}

function apiParams(f: Form): URLSearchParams {
  const p = new URLSearchParams();
  if (f.serviceName) p.set("serviceName", f.serviceName);
  if (f.spanName) p.set("spanName", f.spanName);
  if (f.annotationQuery.trim()) p.set("annotationQuery", f.annotationQuery.trim());
  if (f.minMs) p.set("minDuration", String(Math.round(Number(f.minMs) * 1000)));
  if (f.maxMs) p.set("maxDuration", String(Math.round(Number(f.maxMs) * 1000)));
  const end = f.end ? new Date(f.end).getTime() : Date.now();
  p.set("endTs", String(end));
  p.set("lookback", f.lookback);
  p.set("limit", f.limit || "20");
  return p;
}

function urlFromForm(f: Form): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
  p.set("search", "1");
  return `/?${p}`;
}

export function SearchPage(props: { query: URLSearchParams }) {
  const [form, setForm] = useState<Form>(() => formFromQuery(props.query));
  const [services, setServices] = useState<string[]>([]);
  const [spanNames, setSpanNames] = useState<string[]>([]);
  const [results, setResults] = useState<Load<TraceSummary[]> | undefined>();
  const [traceId, setTraceId] = useState("");
  const searchKey = props.query.toString();

  useEffect(() => {
    api.services().then(setServices, () => setServices([]));
  }, []);
  useEffect(() => {
    if (!form.serviceName) return setSpanNames([]);
    api.spanNames(form.serviceName).then(setSpanNames, () => setSpanNames([]));
  }, [form.serviceName]);
  // Run the query in the URL (on load and on every submit).
  useEffect(() => {
    if (!props.query.has("search")) return;
    const f = formFromQuery(props.query);
    setForm(f);
    setResults({ state: "loading" });
    api.traces(apiParams(f)).then(
      (traces) => setResults({ state: "ok", value: traces.filter((t) => t.length).map(summarize) }),
      (error) => setResults({ state: "error", error }),
    );
  }, [searchKey]);

  const set = (key: keyof Form) => (e: Event) =>
    setForm({ ...form, [key]: (e.target as HTMLInputElement).value });

  return (
    <div class="page search">
      <form
        class="search-form"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(urlFromForm(form));
        }}
      >
        <label>
          Service
          <select data-testid="service" value={form.serviceName} onChange={set("serviceName")}>
            <option value="">any</option>
            {services.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Span name
          <select value={form.spanName} onChange={set("spanName")} disabled={!form.serviceName}>
            <option value="">any</option>
            {spanNames.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label class="wide">
          Tags
          <input
            placeholder="http.route=/orders and error"
            value={form.annotationQuery}
            onInput={set("annotationQuery")}
          />
        </label>
        <label>
          Min duration (ms)
          <input type="number" min="0" step="any" value={form.minMs} onInput={set("minMs")} />
        </label>
        <label>
          Max duration (ms)
          <input type="number" min="0" step="any" value={form.maxMs} onInput={set("maxMs")} />
        </label>
        <label>
          Time range
          <select value={form.lookback} onChange={set("lookback")}>
            {windows.map((w) => (
              <option value={String(w.ms)}>last {w.label}</option>
            ))}
          </select>
        </label>
        <label>
          Ending at
          <input type="datetime-local" value={form.end} onInput={set("end")} />
        </label>
        <label>
          Limit
          <input type="number" min="1" max="1000" value={form.limit} onInput={set("limit")} />
        </label>
        <button type="submit" data-testid="run-search">
          Find traces
        </button>
      </form>
      <form
        class="open-trace"
        onSubmit={(e) => {
          e.preventDefault();
          if (traceId.trim()) navigate(`/trace/${traceId.trim()}`);
        }}
      >
        <input placeholder="trace id" value={traceId} onInput={(e) => setTraceId((e.target as HTMLInputElement).value)} />
        <button type="submit">Open trace</button>
      </form>
      <Results results={results} />
    </div>
  );
}

function Results(props: { results: Load<TraceSummary[]> | undefined }) {
  const r = props.results;
  if (!r) return <p class="hint">Choose filters and press “Find traces”.</p>;
  if (r.state === "loading") return <p class="hint">Searching…</p>;
  if (r.state === "error") return <ErrorBox error={r.error} what="search" />;
  if (!r.value.length) return <p class="hint">No traces match.</p>;
  const longest = Math.max(...r.value.map((t) => t.durationNs), 1);
  return (
    <table class="results" data-testid="results">
      <thead>
        <tr>
          <th>Start</th>
          <th>Root</th>
          <th>Duration</th>
          <th>Spans</th>
          <th>Services</th>
          <th>Errors</th>
        </tr>
      </thead>
      <tbody>
        {r.value.map((t) => (
          <tr class={t.errorCount ? "has-error" : ""}>
            <td>{formatTimestamp(t.startMs)}</td>
            <td>
              <Link href={`/trace/${t.traceId}`}>
                <strong>{t.rootService}</strong>: {t.rootName}
              </Link>
              <div class="trace-id">{t.traceId}</div>
            </td>
            <td>
              <div class="duration-bar" style={{ width: `${Math.max(2, (100 * t.durationNs) / longest)}%` }} />
              {formatDuration(t.durationNs)}
            </td>
            <td>{t.spanCount}</td>
            <td>
              {t.services.map((s) => (
                <span class="chip">
                  {s.name} × {s.spans}
                </span>
              ))}
            </td>
            <td>{t.errorCount ? <span class="error-mark" title="spans with errors">⚠ {t.errorCount}</span> : ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
