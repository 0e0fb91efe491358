/**
 * The Clipping tab: for the chosen step, how often PPO's ratio clipping removed a token's gradient —
 * per epoch (with the tokens merely outside the band, whose gradient was kept), per response
 * position (a uPlot chart, one line per epoch), and per token string. It says where the classes come
 * from (the trace's clip_class column, or derived for a version-1 trace) and why they are unknown.
 */
import uPlot from 'uplot';
import type { RunSetting } from '../../src/shared/dashboardMessages';
import { tokenTextAt, type PackedPpoTrace } from '../../src/shared/packedTrace';
import {
  bandText,
  clipClassesOrigin,
  summariseClipping,
  type ClipSummary,
  type TraceClipClasses,
} from './clipAnalysis';
import { rgba, themeColour } from './colorScale';
import { element } from './dom';

const percent = (value: number) => `${(100 * value).toFixed(1)}%`;

export class ClipView {
  readonly root = element('section', { className: 'clipping' });
  private plot: uPlot | undefined;
  summary: ClipSummary | undefined;

  constructor() {
    this.root.append(element('p', { className: 'muted' }, ['No PPO trace yet.']));
  }

  setTrace(trace: PackedPpoTrace, clipClasses: TraceClipClasses, cliprange: RunSetting<number> | undefined): void {
    const summary = summariseClipping(trace, clipClasses, (t) => tokenTextAt(trace, t));
    this.summary = summary;
    const intro = element('p', { id: 'clip-intro' }, [
      `Step ${trace.step}, ${bandText(cliprange)}. A token’s gradient is removed (clipped) when ` +
        'A > 0 and r > 1 + ε, or A < 0 and r < 1 − ε; outside the band on the other side it is kept.',
    ]);
    const recorded = clipClasses.origin === 'recorded';
    const origin = element('p', { className: recorded ? 'muted' : 'warning', id: 'clip-origin' }, [
      `Clip classes ${clipClassesOrigin(clipClasses)}.`,
    ]);
    this.plot?.destroy();
    this.plot = undefined;
    if (trace.numEpochs === 0) {
      this.root.replaceChildren(
        element('p', { className: 'muted' }, [`Step ${trace.step} has no PPO epochs: nothing was trained on it.`]),
      );
      return;
    }
    if (summary === undefined) {
      this.root.replaceChildren(intro, origin);
      return;
    }
    const epochRows = summary.epochs.map((e) =>
      element('tr', {}, [
        element('th', { scope: 'row' }, [String(e.epoch + 1)]),
        element('td', { className: 'num' }, [String(e.tokens)]),
        element('td', { className: 'num' }, [String(e.clippedAbove)]),
        element('td', { className: 'num' }, [String(e.clippedBelow)]),
        element('td', { className: 'num' }, [String(e.outsideKept)]),
        element('td', { className: 'num clipped-fraction' }, [percent(e.clippedFraction)]),
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
            'clipped (A>0, r>1+ε)',
            'clipped (A<0, r<1−ε)',
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
        element('td', { className: 'num' }, [String(entry.clipped)]),
        element('td', { className: 'num' }, [percent(entry.fraction)]),
      ]),
    );
    const tokenTable = element('table', { className: 'data', id: 'clip-tokens' }, [
      element('caption', {}, ['Token strings whose gradient was removed most often (occurrence × epoch)']),
      element('thead', {}, [
        element(
          'tr',
          {},
          ['token', 'occurrences', 'clipped', 'fraction'].map((title) => element('th', { scope: 'col' }, [title])),
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
      `Clip fraction by response position, ${summary.clippedByPosition.length} epochs, ` +
        `${summary.tokensAtPosition.length} positions`,
    );
    this.root.replaceChildren(
      intro,
      origin,
      element('div', { className: 'clip-grid' }, [epochTable, chartBox]),
      tokenTable,
    );
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
          ...summary.clippedByPosition.map((_, e) => ({
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
        ...summary.clippedByPosition.map((values) => Array.from(values, (v) => (Number.isNaN(v) ? null : v))),
      ],
      chartBox,
    );
  }
}
