// Human-readable durations and times.

const units: [number, string][] = [
  [86400e9, "d"],
  [3600e9, "h"],
  [60e9, "min"],
  [1e9, "s"],
  [1e6, "ms"],
  [1e3, "µs"],
];

/** 1234567 ns → "1.23 ms"; 7 days → "7 d"; 90 s → "1.5 min". */
export function formatDuration(ns: number): string {
  if (!Number.isFinite(ns)) return "–";
  const abs = Math.abs(ns);
  for (const [size, unit] of units) {
    if (abs >= size) {
      const v = ns / size;
      const text = v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
      return `${text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text} ${unit}`;
    }
  }
  return ns === 0 ? "0" : `${Math.round(ns)} ns`;
}

/** Absolute time (Unix ms) → "2026-11-24 01:02:03.456" in local time. */
export function formatTimestamp(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
  );
}

export function formatPercent(fraction: number, digits = 1): string {
  if (!Number.isFinite(fraction)) return "–";
  return `${(fraction * 100).toFixed(digits)}%`;
}
