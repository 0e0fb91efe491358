/**
 * The Clipping tab: for the chosen step, how often PPO's ratio clipping removed a token's gradient —
 * per epoch (with the tokens merely outside the band, whose gradient was kept), per response
 * position (a uPlot chart, one line per epoch), and per token string.
 */
import uPlot from 'uplot';
import { tokenTextAt, type PackedPpoTrace } from '../../src/shared/packedTrace';
import { summariseClipping, type ClipSummary } from './clipAnalysis';
import { formatNumber, rgba, themeColour } from './colorScale';
import { element } from './dom';

const percent = (value: number) => `${(100 * value).toFixed(1)}%`;

export class ClipView {
  readonly root = element('section', { className: 'clipping' });
  private plot: uPlot | undefined;
  summary: ClipSummary | undefined;

  constructor() {
    this.root.append(element('p', { className: 'muted' }, ['No PPO trace yet.']));
  }

  setTrace(trace: PackedPpoTrace, cliprange: number): void {
    const summary = summariseClipping(trace, cliprange, (t) => tokenTextAt(trace, t));
    this.summary = summary;
    const intro = element('p', {}, [
      `Step ${trace.step}, band [${formatNumber(1 - cliprange)}, ${formatNumber(1 + cliprange)}] (ε = ${cliprange}). A token’s gradient is removed when A > 0 and r > 1 + ε, or A < 0 and r < 1 − ε; outside the band on the other side it is kept.`,
    ]);
    const epochRows = summary.epochs.map((e) =>
      element('tr', {}, [
        element('th', { scope: 'row' }, [String(e.epoch + 1)]),
        element('td', { className: 'num' }, [String(e.tokens)]),
        element('td', { className: 'num' }, [String(e.removedAbove)]),
        element('td', { className: 'num' }, [String(e.removedBelow)]),
        element('td', { className: 'num' }, [String(e.outsideKept)]),
        element('td', { className: 'num removed-fraction' }, [percent(e.removedFraction)]),
        element('td', { className: 'num' }, [percent(e.outsideFraction)]),
      ]),
    );
    const epochTable = element('table', { className: 'data', id: 'clip-epochs' }, [
      element('caption', {}, ['Per epoch']),
      element('thead', {}, [
        element(
          'tr',
          {},
          [
            'epoch',
            'tokens',
            'removed (A>0, r>1+ε)',
            'removed (A<0, r<1−ε)',
            'outside, kept',
            'clip fraction',
            'outside band',
          ].map((title) => element('th', { scope: 'col' }, [title])),
        ),
      ]),
      element('tbody', {}, epochRows),
    ]);
    const tokenRows = summary.byToken.map((entry) =>
      element('tr', {}, [
        element('td', { className: 'token-cell' }, [JSON.stringify(entry.text)]),
        element('td', { className: 'num' }, [String(entry.occurrences)]),
        element('td', { className: 'num' }, [String(entry.removed)]),
        element('td', { className: 'num' }, [percent(entry.fraction)]),
      ]),
    );
    const tokenTable = element('table', { className: 'data', id: 'clip-tokens' }, [
      element('caption', {}, ['Token strings whose gradient was removed most often (occurrence × epoch)']),
      element('thead', {}, [
        element(
          'tr',
          {},
          ['token', 'occurrences', 'removed', 'fraction'].map((title) => element('th', { scope: 'col' }, [title])),
        ),
      ]),
      element(
        'tbody',
        {},
        tokenRows.length > 0
          ? tokenRows
          : [
              element('tr', {}, [
                element('td', { colSpan: 4, className: 'muted' }, ['No token had its gradient removed at this step.']),
              ]),
            ],
      ),
    ]);
    const chartBox = element('figure', { className: 'chart', id: 'clip-by-position' }, [
      element('h3', {}, ['Clip fraction by response position']),
    ]);
    chartBox.setAttribute('role', 'img');
    chartBox.setAttribute(
      'aria-label',
      `Clip fraction by response position, ${summary.removedByPosition.length} epochs, ${summary.tokensAtPosition.length} positions`,
    );
    this.root.replaceChildren(intro, element('div', { className: 'clip-grid' }, [epochTable, chartBox]), tokenTable);
    this.plot?.destroy();
    const positions = Array.from(summary.tokensAtPosition, (_, p) => p);
    const colours = [
      '--vscode-charts-red',
      '--vscode-charts-purple',
      '--vscode-charts-blue',
      '--vscode-charts-orange',
      '--vscode-charts-green',
    ];
    const foreground = rgba(themeColour('--vscode-foreground', { r: 204, g: 204, b: 204 }), 1);
    const grid = rgba(themeColour('--vscode-foreground', { r: 204, g: 204, b: 204 }), 0.12);
    this.plot = new uPlot(
      {
        width: 420,
        height: 200,
        scales: { x: { time: false }, y: { range: [0, 1] } },
        series: [
          { label: 'position' },
          ...summary.removedByPosition.map((_, e) => ({
            label: `epoch ${e + 1}`,
            stroke: rgba(themeColour(colours[e % colours.length], { r: 241, g: 76, b: 76 }), 1),
            width: 2,
            spanGaps: true,
          })),
        ],
        axes: [
          { stroke: foreground, grid: { stroke: grid } },
          { stroke: foreground, grid: { stroke: grid } },
        ],
      },
      [
        positions,
        ...summary.removedByPosition.map((values) => Array.from(values, (v) => (Number.isNaN(v) ? null : v))),
      ],
      chartBox,
    );
  }
}
