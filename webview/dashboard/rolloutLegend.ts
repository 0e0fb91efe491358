/**
 * The Rollouts tab's legend for the token colours: the diverging scale's ends and centre, or the clip
 * classes' swatches with the band and where the classes came from.
 */
import type { RunSetting } from '../../src/shared/dashboardMessages';
import { bandText, clipCellLabels, clipClassesOrigin, type ClipCell } from './clipAnalysis';
import { formatNumber, legendGradient, rgba } from './colorScale';
import { element } from './dom';
import { clipAlpha, colourByLabels, type TokenPainter } from './tokenView';

/** Fills `legend` for the painter's colouring; `cliprange` is the run header's ε, for the band's text. */
export function renderRolloutLegend(
  legend: HTMLElement,
  painter: TokenPainter,
  cliprange: RunSetting<number> | undefined,
): void {
  const label = colourByLabels[painter.colourBy];
  if (painter.colourBy === 'clip') {
    const colours: Record<string, string> = {
      'clipped-above': rgba(painter.clipColours['clipped-above'], clipAlpha['clipped-above']),
      'clipped-below': rgba(painter.clipColours['clipped-below'], clipAlpha['clipped-below']),
      'outside-kept': rgba(painter.clipColours['outside-kept'], clipAlpha['outside-kept']),
    };
    const cells: ClipCell[] = ['clipped-above', 'clipped-below', 'outside-kept', 'inside'];
    const items = cells.map((cell) => {
      const swatch = element('span', { className: 'swatch' });
      swatch.style.backgroundColor = colours[cell] ?? 'transparent';
      return element('span', { className: 'legend-item', title: clipCellLabels[cell] }, [swatch, clipCellLabels[cell]]);
    });
    const origin = painter.clipClasses.origin;
    legend.replaceChildren(
      element('span', { className: 'legend-title' }, [`${label}, epoch ${painter.epoch + 1}, ${bandText(cliprange)}:`]),
      ...(origin === 'unknown' ? [] : items),
      ...(origin === 'recorded'
        ? []
        : [
            element('span', { className: 'muted legend-origin', id: 'legend-clip-origin' }, [
              `Clip classes ${clipClassesOrigin(painter.clipClasses)}.`,
            ]),
          ]),
    );
    legend.setAttribute('aria-label', `Colours: clip class at epoch ${painter.epoch + 1}`);
    return;
  }
  const { centre, range } = painter.scale;
  const bar = element('span', { className: 'legend-bar', id: 'legend-bar' });
  bar.style.backgroundImage = legendGradient(painter.scale);
  const low = element('span', { className: 'legend-low', id: 'legend-low' }, [formatNumber(centre - range)]);
  const mid = element('span', { className: 'legend-mid' }, [formatNumber(centre)]);
  const high = element('span', { className: 'legend-high', id: 'legend-high' }, [formatNumber(centre + range)]);
  const epochNote = painter.colourBy === 'ratio' ? `, epoch ${painter.epoch + 1}` : '';
  legend.replaceChildren(
    element('span', { className: 'legend-title' }, [`${label}${epochNote}:`]),
    low,
    bar,
    high,
    element('span', { className: 'muted legend-centre' }, ['centre ', mid]),
  );
  legend.setAttribute(
    'aria-label',
    `Colour scale for ${label}: from ${formatNumber(centre - range)} (blue) ` +
      `through ${formatNumber(centre)} to ${formatNumber(centre + range)} (orange)`,
  );
}
