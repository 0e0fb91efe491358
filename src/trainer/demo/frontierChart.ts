/**
 * The reward–KL frontier as a small self-contained SVG: held-out oracle score against KL to the SFT
 * reference for each policy, PPO and DPO each joined in order of their coefficient, SFT as the
 * origin. Written by hand because it is a static file for a report, not a live chart.
 */
export interface FrontierPoint {
  readonly label: string;
  readonly family: 'SFT' | 'PPO' | 'DPO';
  readonly kl: number;
  readonly score: number;
}

const colors: Record<FrontierPoint['family'], string> = { SFT: '#6b7280', PPO: '#d97706', DPO: '#2563eb' };

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function ticks(min: number, max: number, count: number): number[] {
  const step = (max - min) / count;
  return Array.from({ length: count + 1 }, (_, i) => min + i * step);
}

export function frontierSvg(points: readonly FrontierPoint[], title: string): string {
  const width = 640;
  const height = 420;
  const margin = { left: 64, right: 150, top: 40, bottom: 52 };
  const xs = points.map((p) => p.kl);
  const ys = points.map((p) => p.score);
  const pad = (lo: number, hi: number) => {
    const span = hi - lo || 1;
    return [lo - span * 0.08, hi + span * 0.08];
  };
  const [xMin, xMax] = pad(Math.min(0, ...xs), Math.max(...xs));
  const [yMin, yMax] = pad(Math.min(...ys), Math.max(...ys));
  const x = (v: number) => margin.left + ((v - xMin) / (xMax - xMin)) * (width - margin.left - margin.right);
  const y = (v: number) =>
    height - margin.bottom - ((v - yMin) / (yMax - yMin)) * (height - margin.top - margin.bottom);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ` +
      `${height}" font-family="system-ui, sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${margin.left}" y="24" font-size="14" font-weight="600">${escapeXml(title)}</text>`);
  for (const t of ticks(xMin, xMax, 5))
    parts.push(
      `<line x1="${x(t)}" x2="${x(t)}" y1="${margin.top}" y2="${height - margin.bottom}" ` +
        `stroke="#e5e7eb"/><text x="${x(t)}" y="${height - margin.bottom + 16}" text-anchor="middle" ` +
        `fill="#374151">${t.toFixed(1)}</text>`,
    );
  for (const t of ticks(yMin, yMax, 5))
    parts.push(
      `<line x1="${margin.left}" x2="${width - margin.right}" y1="${y(t)}" y2="${y(t)}" ` +
        `stroke="#e5e7eb"/><text x="${margin.left - 8}" y="${y(t) + 4}" text-anchor="end" fill="#374151">` +
        `${t.toFixed(2)}</text>`,
    );
  parts.push(
    `<text x="${(margin.left + width - margin.right) / 2}" y="${height - 12}" text-anchor="middle" ` +
      `fill="#111827">KL(π ‖ π_SFT), nats per response (held-out prompts)</text>`,
  );
  parts.push(
    `<text transform="translate(16 ${(margin.top + height - margin.bottom) / 2}) rotate(-90)" ` +
      `text-anchor="middle" fill="#111827">oracle score (held-out)</text>`,
  );
  const sft = points.find((p) => p.family === 'SFT');
  for (const family of ['PPO', 'DPO'] as const) {
    const series = points.filter((p) => p.family === family).sort((a, b) => a.kl - b.kl);
    if (series.length === 0) continue;
    const path = [...(sft ? [sft] : []), ...series]
      .map((p) => `${x(p.kl).toFixed(1)},${y(p.score).toFixed(1)}`)
      .join(' ');
    parts.push(
      `<polyline points="${path}" fill="none" stroke="${colors[family]}" stroke-width="2" stroke-dasharray="` +
        `${family === 'DPO' ? '6 3' : 'none'}"/>`,
    );
  }
  for (const p of points) {
    const shape =
      p.family === 'DPO'
        ? `<rect x="${x(p.kl) - 5}" y="${y(p.score) - 5}" width="10" height="10"`
        : `<circle cx="${x(p.kl)}" cy="${y(p.score)}" r="5"`;
    parts.push(
      `${shape} fill="${colors[p.family]}"><title>` +
        `${escapeXml(`${p.label}: score ${p.score.toFixed(3)}, KL ${p.kl.toFixed(2)}`)}</title></` +
        `${p.family === 'DPO' ? 'rect' : 'circle'}>`,
    );
    parts.push(
      `<text x="${x(p.kl) + 8}" y="${y(p.score) - 8}" fill="#374151" font-size="10">${escapeXml(p.label)}</text>`,
    );
  }
  (['SFT', 'PPO', 'DPO'] as const).forEach((family, i) => {
    const ly = margin.top + 10 + i * 20;
    parts.push(
      `<rect x="${width - margin.right + 20}" y="${ly - 6}" width="12" height="12" fill="` +
        `${colors[family]}"/><text x="${width - margin.right + 38}" y="${ly + 4}" fill="#111827">` +
        `${family}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/**
 * Does frontier A dominate frontier B? Yes when every point of B is weakly dominated by some point
 * of A (at most its KL and at least its score) and at least one of them strictly.
 */
export function dominates(a: readonly FrontierPoint[], b: readonly FrontierPoint[]): boolean {
  let strict = false;
  for (const q of b) {
    const cover = a.find((p) => p.kl <= q.kl && p.score >= q.score);
    if (!cover) return false;
    if (cover.kl < q.kl || cover.score > q.score) strict = true;
  }
  return strict;
}
