/**
 * The token table of one sample (opened with Enter on a row): every number of each token, and the
 * ratio at each epoch against the clip band, with its clip class.
 */
import type { RunSetting } from '../../src/shared/dashboardMessages';
import { tokenFields, tokenTextAt, type PackedPpoTrace } from '../../src/shared/packedTrace';
import { bandText, clipCellAt, clipCellLabels, clipClassesOrigin, isClipped } from './clipAnalysis';
import { formatNumber } from './colorScale';
import { button, element } from './dom';
import { colourByLabels, tokenBackground, tokenValue, type TokenPainter } from './tokenView';

export interface SampleDetailsSource {
  readonly trace: PackedPpoTrace;
  /** The sample's index in the trace. */
  readonly sample: number;
  /** The rows' painter: the token cell's colour, and the clip classes of the ratio cells. */
  readonly painter: TokenPainter;
  /** The run header's ε, for the band's text. */
  readonly cliprange: RunSetting<number> | undefined;
}

export interface SampleDetailsActions {
  close(): void;
  followPrompt(prompt: string): void;
}

/** Fills and shows `details` with the sample's token table, and moves the focus to its heading. */
export function showSampleDetails(
  details: HTMLElement,
  { trace, sample: s, painter, cliprange }: SampleDetailsSource,
  actions: SampleDetailsActions,
): void {
  const heading = element('h2', { id: 'details-heading', tabIndex: -1 }, [
    `Sample ${trace.sample[s]} · step ${trace.step}`,
  ]);
  const close = button('close-details', 'Close', 'Close the token table (Escape)', () => actions.close());
  const follow = button('follow-prompt', 'Prompt over time', 'Show this prompt’s responses at every step', () =>
    actions.followPrompt(trace.prompts[s]),
  );
  const epochs = Array.from({ length: trace.numEpochs }, (_, e) => e);
  const header = element(
    'tr',
    {},
    [
      '#',
      'token',
      'A',
      ...epochs.map((e) => `ratio e${e + 1}`),
      ...tokenFields.map((field) => colourByLabels[field]),
    ].map((title) => element('th', { scope: 'col' }, [title])),
  );
  const body = element('tbody');
  const derived = painter.clipClasses.origin === 'derived' ? ' (derived)' : '';
  for (let t = trace.tokenStart[s], p = 0; t < trace.tokenStart[s + 1]; t++, p++) {
    const advantage = trace.values.advantage[t];
    const cells = epochs.map((e) => {
      const ratio = trace.ratio[e * trace.numTokens + t];
      const clip = clipCellAt(trace, painter.clipClasses, e, t);
      const cell = element('td', { className: `ratio clip-${clip}`, title: `${clipCellLabels[clip]}${derived}` }, [
        formatNumber(ratio),
        isClipped(clip) ? ' ✂' : '',
      ]);
      cell.dataset.clip = clip;
      return cell;
    });
    const tokenCell = element('td', { className: 'token-cell' }, [JSON.stringify(tokenTextAt(trace, t))]);
    tokenCell.style.backgroundColor = tokenBackground(trace, t, painter);
    tokenCell.title = `${colourByLabels[painter.colourBy]} ${formatNumber(tokenValue(trace, t, painter))}`;
    body.append(
      element('tr', {}, [
        element('td', {}, [String(p)]),
        tokenCell,
        element('td', { className: 'sign' }, [advantage > 0 ? '+' : advantage < 0 ? '−' : '0']),
        ...cells,
        ...tokenFields.map((field) => element('td', { className: 'num' }, [formatNumber(trace.values[field][t])])),
      ]),
    );
  }
  const band = element('p', { className: 'muted', id: 'details-band' }, [
    `Clip ${bandText(cliprange)}. ✂: clipping removed the token’s gradient ` +
      '(A > 0 and r > 1 + ε, or A < 0 and r < 1 − ε). ' +
      `Clip classes ${clipClassesOrigin(painter.clipClasses)}.`,
  ]);
  details.replaceChildren(
    element('div', { className: 'toolbar' }, [heading, follow, close]),
    band,
    element('div', { className: 'table-scroll' }, [
      element('table', { className: 'data tokens-table', id: 'tokens-table' }, [element('thead', {}, [header]), body]),
    ]),
  );
  details.hidden = false;
  details.onkeydown = (event) => {
    if (event.key === 'Escape') actions.close();
  };
  heading.focus();
}
