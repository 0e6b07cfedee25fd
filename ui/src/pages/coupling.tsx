// Coupling report: how much of a distributed monolith this system is, per
// entry point, with ranked findings in plain words and example traces
// (GET /api/outrider/v1/analysis).
import { useEffect, useState } from "preact/hooks";
import { api, type AnalysisResponse } from "../lib/api";
import { formatPercent, formatTimestamp } from "../lib/format";
import { Link, navigate } from "../router";
import { ErrorBox, type Load, WindowPicker } from "./common";

const severityRank = { high: 0, medium: 1, low: 2 } as const;

function metricText(v: unknown): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(3).replace(/\.?0+$/, "");
  return typeof v === "string" ? v : JSON.stringify(v);
}

function Examples(props: { ids: string[] }) {
  if (!props.ids?.length) return null;
  return (
    <span class="examples">
      {props.ids.slice(0, 5).map((id, i) => (
        <Link href={`/trace/${id}`} title={id}>
          trace {i + 1}
        </Link>
      ))}
    </span>
  );
}

export function CouplingPage(props: { query: URLSearchParams }) {
  const lookback = Number(props.query.get("lookback") ?? 86400e3);
  const [load, setLoad] = useState<Load<AnalysisResponse>>({ state: "loading" });
  useEffect(() => {
    setLoad({ state: "loading" });
    api.analysis(Date.now(), lookback).then(
      (value) => setLoad({ state: "ok", value }),
      (error) => setLoad({ state: "error", error }),
    );
  }, [lookback]);
  return (
    <div class="page coupling">
      <div class="page-bar">
        <h2>Coupling report</h2>
        <WindowPicker lookback={lookback} onChange={(ms) => navigate(`/coupling?lookback=${ms}`)} />
      </div>
      {load.state === "loading" && <p class="hint">Analysing…</p>}
      {load.state === "error" && <ErrorBox error={load.error} what="coupling analysis" />}
      {load.state === "ok" && <Report report={load.value} />}
    </div>
  );
}

function Report(props: { report: AnalysisResponse }) {
  const r = props.report;
  const findings = [...(r.findings ?? [])].sort((a, b) => severityRank[a.severity] - severityRank[b.severity]);
  const entries = [...(r.entryPoints ?? [])].sort((a, b) => b.score - a.score);
  return (
    <div data-testid="coupling-report">
      <p class="hint">
        {r.traces} traces from {formatTimestamp(r.window.startMs)} to {formatTimestamp(r.window.endMs)}. Metrics are
        defined in docs/analysis.md.
      </p>
      <h3>Findings</h3>
      {findings.length === 0 && <p class="hint">No findings: nothing looks temporally coupled in this window.</p>}
      <ol class="findings" data-testid="findings">
        {findings.map((f) => (
          <li class={`finding ${f.severity}`}>
            <span class={`severity ${f.severity}`}>{f.severity}</span> <span class="kind">{f.kind}</span>
            <p>{f.text}</p>
            <div class="finding-meta">
              {f.entryPoint && <span>entry point {f.entryPoint}</span>}
              {f.services?.length > 0 && <span>services {f.services.join(" → ")}</span>}
              {Object.entries(f.metrics ?? {}).map(([k, v]) => (
                <span class="chip">
                  {k} {metricText(v)}
                </span>
              ))}
              <Examples ids={f.exampleTraceIds} />
            </div>
          </li>
        ))}
      </ol>
      <h3>Entry points</h3>
      <table class="results entry-points">
        <thead>
          <tr>
            <th>Entry point</th>
            <th title="higher: more coupled">Score</th>
            <th>Traces</th>
            <th title="blocking synchronous call chain depth">Sync depth max / p50</th>
            <th title="blocking calls made in parallel or in sequence by one span">Fan-out max</th>
            <th title="share of end-to-end latency spent waiting on synchronous remote calls">Sync share</th>
            <th title="product of the success rates of the callees on the chain">Availability</th>
            <th>Examples</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr>
              <td>
                <a href="#" onClick={(ev) => (ev.preventDefault(), navigate(`/?search=1&serviceName=${encodeURIComponent(e.service)}&spanName=${encodeURIComponent(e.operation)}`))}>
                  <strong>{e.service}</strong>: {e.operation}
                </a>
              </td>
              <td>
                <span class="score" style={{ width: `${Math.min(100, e.score)}px` }} /> {metricText(e.score)}
              </td>
              <td>{e.traces}</td>
              <td>
                {e.syncDepth?.max} / {e.syncDepth?.p50}
              </td>
              <td>{e.fanOut?.max}</td>
              <td>{formatPercent(e.syncShare)}</td>
              <td>{formatPercent(e.availability, 3)}</td>
              <td>
                <Examples ids={e.exampleTraceIds} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {r.cycles?.length > 0 && (
        <>
          <h3>Cycles in the synchronous call graph</h3>
          <ul>
            {r.cycles.map((c) => (
              <li>{[...c, c[0]].join(" → ")}</li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
