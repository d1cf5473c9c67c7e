// Benchmark chart: an SVG of throughput against active MACs, one line per variant (stream, 64-byte frames, whole-buffer bursts).

interface Point {
  variant: string;
  scenario: string;
  sizes: string;
  macs: number;
  burst: number | string;
  mpps: number;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf'];

/** Returns an SVG document plotting Mpps (log scale) against active MACs for every variant. */
export function chart(rows: readonly Point[]): string {
  const pts = rows.filter((r) => r.scenario === 'stream' && r.sizes === '64' && (r.burst === 'whole' || r.variant.includes('deliver')));
  const variants = [...new Set(pts.map((p) => p.variant))];
  const macs = [...new Set(pts.map((p) => p.macs))].sort((a, b) => a - b);
  const W = 800,
    H = 420,
    L = 70,
    R = 290,
    T = 40,
    B = 50;
  const max = Math.max(...pts.map((p) => p.mpps), 1);
  const min = Math.max(Math.min(...pts.map((p) => p.mpps)), 0.01);
  const lo = Math.floor(Math.log10(min)),
    hi = Math.ceil(Math.log10(max));
  const x = (m: number): number => L + (macs.length === 1 ? 0 : (macs.indexOf(m) / (macs.length - 1)) * (W - L - R));
  const y = (v: number): number => T + (1 - (Math.log10(v) - lo) / (hi - lo)) * (H - T - B);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  out.push(`<text x="${L}" y="22" font-size="14">Classification throughput, stream of 64-byte frames (Mpps, log scale)</text>`);
  for (let e = lo; e <= hi; e++) {
    for (const k of [1, 2, 5]) {
      const v = k * 10 ** e;
      if (v < 10 ** lo || v > 10 ** hi) continue;
      out.push(
        `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>` +
          `<text x="${L - 8}" y="${y(v) + 4}" text-anchor="end">${v}</text>`,
      );
    }
  }
  for (const m of macs) out.push(`<text x="${x(m)}" y="${H - B + 20}" text-anchor="middle">${m}</text>`);
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">active MACs</text>`);
  variants.forEach((v, i) => {
    const c = COLORS[i % COLORS.length];
    const line = macs.map((m) => pts.find((p) => p.variant === v && p.macs === m)).filter((p): p is Point => p !== undefined);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${line.map((p) => `${x(p.macs)},${y(p.mpps)}`).join(' ')}"/>`);
    for (const p of line) out.push(`<circle cx="${x(p.macs)}" cy="${y(p.mpps)}" r="3" fill="${c}"/>`);
    out.push(
      `<rect x="${W - R + 15}" y="${T + i * 20}" width="12" height="12" fill="${c}"/>` +
        `<text x="${W - R + 32}" y="${T + i * 20 + 10}">${v.replace(/&/g, '&amp;')}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
