// Folding long quiet stretches of a trace's timeline.
//
// A message delivered 7 days after it was sent would squash everything else
// into two slivers at both ends of a linear timeline. The axis here is
// piecewise linear: a *quiet interval* is a stretch between two consecutive
// span boundaries (starts, ends, event times) in which nothing starts or ends.
// Quiet intervals at least `minFoldNs` long are candidates; the k longest are
// folded for the largest k at which the shortest of them is still longer than
// `dominance` times the time left unfolded (so a slow call inside an otherwise
// quick trace stays to scale, while delivery delays that dwarf the work fold). A folded interval is drawn with
// a fixed width and labelled with its length; the rest shares the remaining
// width in proportion to time.

export interface FoldOptions {
  minFoldNs: number;
  dominance: number;
  foldWidth: number; // fraction of the axis one fold takes
  maxFoldShare: number; // at most this fraction of the axis for all folds together
}

export const defaultFoldOptions: FoldOptions = {
  minFoldNs: 1e9,
  dominance: 2,
  foldWidth: 0.04,
  maxFoldShare: 0.3,
};

export interface AxisSegment {
  start: number; // ns
  end: number; // ns
  folded: boolean;
  x0: number; // fraction of the axis [0, 1]
  x1: number;
}

export interface TimeAxis {
  start: number;
  end: number;
  segments: AxisSegment[];
  folds: AxisSegment[];
  /** Time (ns) → position on the axis in [0, 1]. */
  toX(t: number): number;
}

interface Interval {
  start: number;
  end: number;
}

/** The quiet intervals between sorted distinct boundary times. */
export function quietIntervals(times: number[]): Interval[] {
  const sorted = Float64Array.from(times).sort();
  const out: Interval[] = [];
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] > sorted[i - 1]) out.push({ start: sorted[i - 1], end: sorted[i] });
  }
  return out;
}

/** The intervals to fold, in time order. */
export function chooseFolds(times: number[], opts: FoldOptions = defaultFoldOptions): Interval[] {
  if (times.length < 2) return [];
  let min = Infinity;
  let max = -Infinity;
  for (const t of times) {
    if (t < min) min = t;
    if (t > max) max = t;
  }
  const candidates = quietIntervals(times)
    .filter((q) => q.end - q.start >= opts.minFoldNs)
    .sort((a, b) => b.end - b.start - (a.end - a.start));
  // Fold the k longest candidates for the largest k at which the shortest of
  // them still dominates the time left unfolded (and some time is left).
  const total = max - min;
  let folded = 0;
  let best = 0;
  for (let k = 1; k <= candidates.length; k++) {
    const length = candidates[k - 1].end - candidates[k - 1].start;
    folded += length;
    const left = total - folded;
    if (left > 0 && length > opts.dominance * left) best = k;
  }
  const folds = candidates.slice(0, best);
  return folds.sort((a, b) => a.start - b.start);
}

/** Builds the piecewise-linear axis over [start, end] with `folds` folded. */
export function buildAxis(
  start: number,
  end: number,
  folds: Interval[],
  opts: FoldOptions = defaultFoldOptions,
): TimeAxis {
  const pieces: { start: number; end: number; folded: boolean }[] = [];
  let cursor = start;
  for (const f of folds) {
    if (f.start > cursor) pieces.push({ start: cursor, end: f.start, folded: false });
    pieces.push({ start: f.start, end: f.end, folded: true });
    cursor = f.end;
  }
  if (end > cursor || pieces.length === 0) pieces.push({ start: cursor, end: Math.max(end, cursor), folded: false });

  const foldCount = folds.length;
  const foldWidth = foldCount ? Math.min(opts.foldWidth, opts.maxFoldShare / foldCount) : 0;
  const linearTime = pieces.filter((p) => !p.folded).reduce((sum, p) => sum + (p.end - p.start), 0);
  const linearWidth = 1 - foldWidth * foldCount;
  const linearPieces = pieces.filter((p) => !p.folded).length;
  const segments: AxisSegment[] = [];
  let x = 0;
  for (const p of pieces) {
    let width: number;
    if (p.folded) width = foldWidth;
    else if (linearTime > 0) width = (linearWidth * (p.end - p.start)) / linearTime;
    else width = linearWidth / linearPieces;
    segments.push({ ...p, x0: x, x1: x + width });
    x += width;
  }
  if (segments.length) segments[segments.length - 1].x1 = 1;

  const toX = (t: number): number => {
    if (t <= start) return 0;
    if (t >= end) return 1;
    let lo = 0;
    let hi = segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (segments[mid].end < t) lo = mid + 1;
      else hi = mid;
    }
    const s = segments[lo];
    const span = s.end - s.start;
    return span > 0 ? s.x0 + ((t - s.start) / span) * (s.x1 - s.x0) : s.x0;
  };
  return { start, end, segments, folds: segments.filter((s) => s.folded), toX };
}

/** The axis of a set of spans (and event times), folding long quiet stretches. */
export function axisForSpans(
  spans: { start: number; end: number; events?: { time: number }[] }[],
  fold = true,
  opts: FoldOptions = defaultFoldOptions,
): TimeAxis {
  const times: number[] = [];
  for (const s of spans) {
    times.push(s.start, s.end);
    if (s.events) for (const e of s.events) times.push(e.time);
  }
  if (!times.length) return buildAxis(0, 0, [], opts);
  let min = Infinity;
  let max = -Infinity;
  for (const t of times) {
    if (t < min) min = t;
    if (t > max) max = t;
  }
  return buildAxis(min, max, fold ? chooseFolds(times, opts) : [], opts);
}
