/**
 * Diverging colour scales for the token heatmap: a value's distance from the scale's centre (0, or 1
 * for the PPO ratio) sets the opacity of one of two theme colours (VS Code's `charts.blue` below the
 * centre, `charts.orange` above), so the text keeps the theme's own foreground in light, dark and
 * high-contrast themes. The range is symmetric, the largest distance in the step, so colours compare
 * across the samples of one step and the legend states it.
 */

export interface Rgb {
  readonly r: number;
  readonly g: number;
  readonly b: number;
}

export interface DivergingScale {
  readonly centre: number;
  /** The largest |value − centre|; 0 when every value sits on the centre. */
  readonly range: number;
  readonly negative: Rgb;
  readonly positive: Rgb;
}

/** The opacity at the ends of the scale: strong enough to read, light enough to read the text on it. */
export const maxAlpha = 0.85;

export function parseCssColour(text: string, fallback: Rgb): Rgb {
  const value = text.trim();
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})([0-9a-f]{2})?$/i.exec(value);
  if (hex) {
    const digits = hex[1].length === 3 ? [...hex[1]].map((c) => c + c).join('') : hex[1];
    return {
      r: parseInt(digits.slice(0, 2), 16),
      g: parseInt(digits.slice(2, 4), 16),
      b: parseInt(digits.slice(4, 6), 16),
    };
  }
  const rgb = /^rgba?\(\s*(\d+)[\s,]+(\d+)[\s,]+(\d+)/i.exec(value);
  if (rgb) return { r: Number(rgb[1]), g: Number(rgb[2]), b: Number(rgb[3]) };
  return fallback;
}

/** A theme colour from a VS Code CSS variable, with the Dark Modern value as fallback. */
export function themeColour(variable: string, fallback: Rgb): Rgb {
  return parseCssColour(getComputedStyle(document.documentElement).getPropertyValue(variable), fallback);
}

export const themeColours = () => ({
  negative: themeColour('--vscode-charts-blue', { r: 55, g: 148, b: 255 }),
  positive: themeColour('--vscode-charts-orange', { r: 209, g: 134, b: 22 }),
  red: themeColour('--vscode-charts-red', { r: 241, g: 76, b: 76 }),
  purple: themeColour('--vscode-charts-purple', { r: 177, g: 128, b: 215 }),
  yellow: themeColour('--vscode-charts-yellow', { r: 204, g: 167, b: 0 }),
  green: themeColour('--vscode-charts-green', { r: 137, g: 209, b: 133 }),
});

/** A scale over the finite values of `values` (a subarray of one step's tokens). */
export function divergingScale(
  values: ArrayLike<number>,
  centre: number,
  colours: { negative: Rgb; positive: Rgb },
): DivergingScale {
  let range = 0;
  for (let i = 0; i < values.length; i++) {
    const distance = Math.abs(values[i] - centre);
    if (Number.isFinite(distance) && distance > range) range = distance;
  }
  return { centre, range, negative: colours.negative, positive: colours.positive };
}

/** Opacity in [0, maxAlpha], rounded to 1/1000 so the same value always gives the same CSS colour. */
export function alphaOf(scale: DivergingScale, value: number): number {
  if (!Number.isFinite(value) || scale.range === 0) return 0;
  const t = Math.min(1, Math.abs(value - scale.centre) / scale.range);
  return Math.round(t * maxAlpha * 1000) / 1000;
}

export const rgba = (colour: Rgb, alpha: number) => `rgba(${colour.r}, ${colour.g}, ${colour.b}, ${alpha})`;

/** The CSS background of a token with this value ('transparent' at the centre). */
export function colourOf(scale: DivergingScale, value: number): string {
  const alpha = alphaOf(scale, value);
  if (alpha === 0) return 'transparent';
  return rgba(value < scale.centre ? scale.negative : scale.positive, alpha);
}

/** The legend's gradient: negative end, centre, positive end. */
export function legendGradient(scale: DivergingScale): string {
  return (
    `linear-gradient(to right, ${rgba(scale.negative, maxAlpha)}, transparent 50%, ` +
    `${rgba(scale.positive, maxAlpha)})`
  );
}

/** A number for labels and tooltips: 4 significant digits, no exponent for ordinary sizes. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return Number.isNaN(value) ? '—' : value > 0 ? '∞' : '−∞';
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  const text = magnitude >= 1e5 || magnitude < 1e-3 ? value.toExponential(2) : Number(value.toPrecision(4)).toString();
  return text.replace('-', '−');
}
