// Geometry of the waterfall: where bars, critical-path marks and axis ticks
// go, as fractions of the timeline width (the view multiplies by pixels).
import type { PathSegment } from "./critical_path";
import type { TimeAxis } from "./gaps";
import { formatDuration } from "./format";

export interface Bar {
  left: number; // fraction
  width: number; // fraction, at least minWidth
}

/** Smallest bar drawn, so zero-length spans stay visible and clickable. */
export const minBarWidth = 0.002;

export function barFor(start: number, end: number, axis: TimeAxis): Bar {
  const left = axis.toX(start);
  const right = axis.toX(end);
  return { left: Math.min(left, 1 - minBarWidth), width: Math.max(minBarWidth, right - left) };
}

export function criticalMarks(segments: PathSegment[] | undefined, axis: TimeAxis): Bar[] {
  if (!segments) return [];
  return segments.map((s) => {
    const left = axis.toX(s.start);
    return { left, width: Math.max(minBarWidth / 2, axis.toX(s.end) - left) };
  });
}

export interface Tick {
  x: number;
  label: string;
}

/**
 * Ticks along the axis: about `count` over the whole width, spread over the
 * unfolded segments by their width. The first tick of a segment says how far
 * it is from the trace start; the others count from the segment's start
 * ("+20 ms"), which stays readable after a 7-day fold.
 */
export function ticks(axis: TimeAxis, count = 8): Tick[] {
  const out: Tick[] = [];
  for (const s of axis.segments) {
    if (s.folded) continue;
    const n = Math.max(1, Math.round(count * (s.x1 - s.x0)));
    for (let i = 0; i < n; i++) {
      const t = s.start + ((s.end - s.start) * i) / n;
      const label = i === 0 ? formatDuration(t - axis.start) : `+${formatDuration(t - s.start)}`;
      out.push({ x: axis.toX(t), label });
    }
  }
  return out;
}

/** Rows visible in a scrolled viewport (virtualization), with overscan. */
export function visibleRange(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  rowCount: number,
  overscan = 10,
): { first: number; last: number } {
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(rowCount, Math.ceil((scrollTop + viewportHeight) / rowHeight) + overscan);
  return { first, last };
}
