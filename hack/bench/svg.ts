// The rollout picture of `npm run bench`, written by hand (no plotting dependency): two stacked
// charts sharing one time axis, ready replicas on top and restores in flight below, one step line
// per method, so the window's effect and the slow start are visible at a glance.

/** [seconds since the start, value] points of a step function, in time order. */
export type Series = [number, number][];

export interface Line {
  name: string;
  ready: Series;
  inFlight: Series;
  /** Seconds at which the method was done (the line is held flat until then). */
  end: number;
}

const COLORS = ['#d95f02', '#1b9e77', '#7570b3', '#e7298a'];
const W = 760;
const PAD = { left: 48, right: 16, top: 34, bottom: 34 };
const CHART_H = 170;
const GAP = 44;

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A tick step of 1, 2 or 5 times a power of ten giving about `n` ticks up to `max`. */
function tickStep(max: number, n: number): number {
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? raw;
}

function stepPath(series: Series, end: number, x: (t: number) => number, y: (v: number) => number): string {
  const pts = [...series].sort((a, b) => a[0] - b[0]);
  let d = `M${x(0).toFixed(1)},${y(pts[0]?.[1] ?? 0).toFixed(1)}`;
  for (const [t, v] of pts) d += ` H${x(t).toFixed(1)} V${y(v).toFixed(1)}`;
  return `${d} H${x(Math.max(end, pts.at(-1)?.[0] ?? 0)).toFixed(1)}`;
}

function chart(top: number, title: string, yMax: number, tMax: number, lines: Line[], pick: (l: Line) => Series, cap?: number): string {
  const x = (t: number) => PAD.left + (t / tMax) * (W - PAD.left - PAD.right);
  const y = (v: number) => top + CHART_H - (v / yMax) * CHART_H;
  const out: string[] = [`<text x="${PAD.left}" y="${top - 8}" font-weight="bold">${esc(title)}</text>`];
  const ys = tickStep(yMax, 5);
  for (let v = 0; v <= yMax + 1e-9; v += ys) {
    out.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${PAD.left - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`);
  }
  const xs = tickStep(tMax, 8);
  for (let t = 0; t <= tMax + 1e-9; t += xs) out.push(`<text x="${x(t)}" y="${top + CHART_H + 16}" text-anchor="middle">${t}</text>`);
  if (cap !== undefined) {
    out.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(cap)}" y2="${y(cap)}" stroke="#999" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${W - PAD.right}" y="${y(cap) - 4}" text-anchor="end" fill="#666">limit ${cap}</text>`);
  }
  lines.forEach((l, i) => {
    out.push(`<path d="${stepPath(pick(l), l.end, x, y)}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"/>`);
  });
  out.push(`<rect x="${PAD.left}" y="${top}" width="${W - PAD.left - PAD.right}" height="${CHART_H}" fill="none" stroke="#888"/>`);
  return out.join('\n');
}

export function rolloutSvg(lines: Line[], o: { replicas: number; limit: number; title: string }): string {
  const tMax = Math.max(1, ...lines.map((l) => l.end)) * 1.02;
  const peak = Math.max(o.limit, ...lines.flatMap((l) => l.inFlight.map(([, v]) => v)));
  const top1 = PAD.top + 22;
  const top2 = top1 + CHART_H + GAP;
  const h = top2 + CHART_H + PAD.bottom + 10;
  const legend = lines
    .map(
      (l, i) =>
        `<rect x="${PAD.left + i * 260}" y="${PAD.top - 6}" width="14" height="4" fill="${COLORS[i % COLORS.length]}"/><text x="${PAD.left + 20 + i * 260}" y="${PAD.top}">${esc(l.name)}</text>`,
    )
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${PAD.left}" y="16" font-size="14" font-weight="bold">${esc(o.title)}</text>
${legend}
${chart(top1, 'ready replicas', o.replicas, tMax, lines, (l) => l.ready)}
${chart(top2, 'restores in flight (created, not yet started)', peak, tMax, lines, (l) => l.inFlight, o.limit)}
<text x="${W / 2}" y="${h - 8}" text-anchor="middle">seconds since the start</text>
</svg>
`;
}
