/**
 * One response's tokens as heatmap spans, and the numbers a token's tooltip shows. Whitespace-only
 * tokens are drawn with visible marks (· for a space, → for a tab, ↵ then a line break for a
 * newline) so they keep their colour and can be hovered.
 */
import {
  noTokenId,
  tokenFields,
  tokenTextAt,
  type PackedPpoTrace,
  type TokenField,
} from '../../src/shared/packedTrace';
import { clipCellAt, clipCellLabels, clipClassesOrigin, type ClipCell, type TraceClipClasses } from './clipAnalysis';
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
  clip: 'clip class',
};

export interface ClipColours {
  readonly [cls: string]: Rgb;
}

/** How a token's background is computed for the current colour-by choice. */
export interface TokenPainter {
  readonly colourBy: ColourBy;
  readonly epoch: number;
  readonly clipClasses: TraceClipClasses;
  readonly scale: DivergingScale;
  readonly clipColours: Record<ColouredClipCell, Rgb>;
}

/** The clip cells drawn in colour; the others are transparent. */
export type ColouredClipCell = 'clipped-above' | 'clipped-below' | 'outside-kept';

export const clipAlpha: Record<ClipCell, number> = {
  'clipped-above': 0.75,
  'clipped-below': 0.75,
  'outside-kept': 0.4,
  inside: 0,
  none: 0,
  unknown: 0,
};

const isColoured = (cell: ClipCell): cell is ColouredClipCell => clipAlpha[cell] > 0;

/** The number behind a token's colour: the per-token value, the ratio, or the clip class (NaN when unknown). */
export function tokenValue(trace: PackedPpoTrace, t: number, painter: TokenPainter): number {
  const index = painter.epoch * trace.numTokens + t;
  if (painter.colourBy === 'ratio') return trace.ratio[index];
  if (painter.colourBy === 'clip')
    return painter.clipClasses.origin === 'unknown' ? Number.NaN : painter.clipClasses.classes[index];
  return trace.values[painter.colourBy][t];
}

export function tokenBackground(trace: PackedPpoTrace, t: number, painter: TokenPainter): string {
  if (painter.colourBy === 'clip') {
    const cell = clipCellAt(trace, painter.clipClasses, painter.epoch, t);
    return isColoured(cell) ? rgba(painter.clipColours[cell], clipAlpha[cell]) : 'transparent';
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

/**
 * Tooltip lines for token t: its text, id, position, every per-token number, ratio and clip class per epoch,
 * and where the classes come from when the trace did not record them.
 */
export function tokenDetails(
  trace: PackedPpoTrace,
  t: number,
  s: number,
  clipClasses: TraceClipClasses,
): [string, string][] {
  const lines: [string, string][] = [
    ['token', JSON.stringify(tokenTextAt(trace, t))],
    ['id', trace.tokenIds[t] === noTokenId ? 'not logged' : String(trace.tokenIds[t])],
    ['position', String(t - trace.tokenStart[s])],
  ];
  for (const field of tokenFields) lines.push([colourByLabels[field], formatNumber(trace.values[field][t])]);
  const derived = clipClasses.origin === 'derived' ? ' (derived)' : '';
  for (let e = 0; e < trace.numEpochs; e++) {
    const ratio = trace.ratio[e * trace.numTokens + t];
    const cell = clipCellAt(trace, clipClasses, e, t);
    lines.push([`ratio, epoch ${e + 1}`, `${formatNumber(ratio)} · ${clipCellLabels[cell]}${derived}`]);
  }
  if (trace.numEpochs > 0 && clipClasses.origin !== 'recorded')
    lines.push(['clip classes', clipClassesOrigin(clipClasses)]);
  return lines;
}
