// Shared bits of the pages: loading/error states and the time window picker.
import { ApiError } from "../lib/api";

export type Load<T> = { state: "loading" } | { state: "error"; error: unknown } | { state: "ok"; value: T };

export function ErrorBox(props: { error: unknown; what: string }) {
  const e = props.error;
  if (e instanceof ApiError && e.status === 404 && props.what !== "trace") {
    return (
      <div class="notice unavailable" data-testid="unavailable">
        <strong>Not available.</strong> This collector has no {props.what} endpoint yet (HTTP 404).
        Newer versions of <code>outrider collector</code> serve it.
      </div>
    );
  }
  const message = e instanceof Error ? e.message : String(e);
  return (
    <div class="notice error" data-testid="error">
      Could not load the {props.what}: {message}
    </div>
  );
}

export const windows: { label: string; ms: number }[] = [
  { label: "15 minutes", ms: 15 * 60e3 },
  { label: "1 hour", ms: 3600e3 },
  { label: "6 hours", ms: 6 * 3600e3 },
  { label: "1 day", ms: 86400e3 },
  { label: "7 days", ms: 7 * 86400e3 },
  { label: "30 days", ms: 30 * 86400e3 },
];

export function WindowPicker(props: { lookback: number; onChange: (ms: number) => void }) {
  return (
    <label>
      Window{" "}
      <select
        data-testid="window"
        value={String(props.lookback)}
        onChange={(e) => props.onChange(Number((e.target as HTMLSelectElement).value))}
      >
        {windows.map((w) => (
          <option value={String(w.ms)}>last {w.label}</option>
        ))}
      </select>
    </label>
  );
}
