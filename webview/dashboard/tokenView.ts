/**
 * One response's tokens as heatmap spans, and the numbers a token's tooltip shows. Whitespace-only
 * tokens are drawn with visible marks (· for a space, → for a tab, ↵ then a line break for a
 * newline) so they keep their colour and can be hovered.
 */
import { tokenFields, tokenTextAt, type PackedPpoTrace, type TokenField } from '../../src/shared/packedTrace';
import { classifyClip, clipClassLabels, type ClipClass } from './clipAnalysis';
import { colourOf, formatNumber, rgba, type DivergingScale, type Rgb } from './colorScale';

/** What the heatmap colours tokens by: a per-token scalar, the ratio at an epoch, or the clip class at an epoch. */
export type ColourBy = TokenField | 'ratio' | 'clip';

export const colourByLabels: Record<ColourBy, string> = {
  reward: 'reward',
  kl: 'KL',
  value: 'value',
  advantage: 'advantage',
  return: 'return',
  entropy: 'entropy',
  logprob: 'logprob',
  ref_logprob: 'ref logprob',
  ratio: 'ratio',
  clip: 'clip',
};

export interface ClipColours {
  readonly [cls: string]: Rgb;
}

/** How a token's background is computed for the current colour-by choice. */
export interface TokenPainter {
  readonly colourBy: ColourBy;
  readonly epoch: number;
  readonly cliprange: number;
  readonly scale: DivergingScale;
  readonly clipColours: Record<Exclude<ClipClass, 'inside' | 'none'>, Rgb>;
}

export const clipAlpha: Record<ClipClass, number> = {
  'removed-above': 0.75,
  'removed-below': 0.75,
  'outside-kept': 0.4,
  inside: 0,
  none: 0,
};

export function tokenValue(trace: PackedPpoTrace, t: number, painter: TokenPainter): number {
  if (painter.colourBy === 'ratio') return trace.ratio[painter.epoch * trace.numTokens + t];
  if (painter.colourBy === 'clip') return trace.clip[painter.epoch * trace.numTokens + t];
  return trace.values[painter.colourBy][t];
}

export function tokenBackground(trace: PackedPpoTrace, t: number, painter: TokenPainter): string {
  if (painter.colourBy === 'clip') {
    const cls = classifyClip(
      trace.ratio[painter.epoch * trace.numTokens + t],
      trace.values.advantage[t],
      painter.cliprange,
    );
    return cls === 'inside' || cls === 'none' ? 'transparent' : rgba(painter.clipColours[cls], clipAlpha[cls]);
  }
  return colourOf(painter.scale, tokenValue(trace, t, painter));
}

/** The text drawn for a token: whitespace-only tokens get visible marks. */
export function visibleText(text: string): { text: string; whitespace: boolean; newline: boolean } {
  if (text.length === 0) return { text: '∅', whitespace: true, newline: false };
  if (text.trim() !== '') return { text, whitespace: false, newline: false };
  const marks = text.replace(/\r?\n/g, '↵').replace(/\t/g, '→').replace(/ /g, '·');
  return { text: marks, whitespace: true, newline: text.includes('\n') };
}

/** Appends sample s's tokens to `parent` as spans with data-t (the token index in the step). */
export function renderTokens(parent: HTMLElement, trace: PackedPpoTrace, s: number, painter: TokenPainter): void {
  const fragment = document.createDocumentFragment();
  for (let t = trace.tokenStart[s]; t < trace.tokenStart[s + 1]; t++) {
    const shown = visibleText(tokenTextAt(trace, t));
    const span = document.createElement('span');
    span.className = shown.whitespace ? 'tok ws' : 'tok';
    span.dataset.t = String(t);
    span.textContent = shown.text;
    // CSSOM assignments are allowed by the webview's CSP (inline style attributes are not).
    span.style.backgroundColor = tokenBackground(trace, t, painter);
    fragment.append(span);
    if (shown.newline) fragment.append(document.createElement('br'));
  }
  parent.append(fragment);
}

/** Tooltip lines for token t: its text, id, position, every per-token number, ratio and clip class per epoch. */
export function tokenDetails(trace: PackedPpoTrace, t: number, s: number, cliprange: number): [string, string][] {
  const lines: [string, string][] = [
    ['token', JSON.stringify(tokenTextAt(trace, t))],
    ['id', String(trace.tokenIds[t])],
    ['position', String(t - trace.tokenStart[s])],
  ];
  for (const field of tokenFields) lines.push([colourByLabels[field], formatNumber(trace.values[field][t])]);
  for (let e = 0; e < trace.numEpochs; e++) {
    const ratio = trace.ratio[e * trace.numTokens + t];
    lines.push([
      `ratio, epoch ${e + 1}`,
      `${formatNumber(ratio)} · ${clipClassLabels[classifyClip(ratio, trace.values.advantage[t], cliprange)]}`,
    ]);
  }
  return lines;
}
