/**
 * The Rollouts tab: one step's samples as rows — prompt, then the response's tokens as a heatmap —
 * with a step slider ("follow latest"), colour-by, sort, filter and search controls, the scale's
 * legend, a tooltip with every number of the hovered token, and a per-token table of the chosen
 * sample (keyboard: Enter on a row) that shows the ratio at each epoch against the clip band.
 */
import { responseText, tokenFields, tokenTextAt, type PackedPpoTrace } from '../../src/shared/packedTrace';
import { classifyClip, clipClassLabels, clippedTokenCounts, isRemoved, type ClipClass } from './clipAnalysis';
import { divergingScale, formatNumber, legendGradient, rgba, themeColours } from './colorScale';
import { button, element, labelledInput, labelledSelect } from './dom';
import {
  clipAlpha,
  colourByLabels,
  renderTokens,
  tokenBackground,
  tokenDetails,
  tokenValue,
  type ColourBy,
  type TokenPainter,
} from './tokenView';
import { VirtualList } from './virtualList';

/** A per-sample number the rows show: what they can be sorted by, and (all but `sample`) filtered by. */
export type SampleField = 'sample' | 'score' | 'oracle' | 'kl' | 'length' | 'clipped';
export type SortKey = SampleField;
/** The sample's index is an order, not a quantity: the filter leaves it out. */
export type FilterKey = Exclude<SampleField, 'sample'>;
const sampleFieldLabels: Record<SampleField, string> = {
  sample: 'sample',
  score: 'score',
  oracle: 'oracle score',
  kl: 'KL (sum)',
  length: 'length',
  clipped: 'clipped tokens',
};

export interface RolloutCallbacks {
  requestStep(step: number): void;
  followPrompt(prompt: string): void;
}

/** Per-sample numbers the rows show and the sort and filter use. */
export interface SampleStats {
  readonly score: Float32Array;
  readonly oracle: Float32Array;
  readonly kl: Float64Array;
  readonly length: Uint32Array;
  readonly clipped: Uint32Array;
  readonly searchText: string[];
}

export function sampleStats(trace: PackedPpoTrace, cliprange: number): SampleStats {
  const kl = new Float64Array(trace.numSamples);
  const length = new Uint32Array(trace.numSamples);
  for (let s = 0; s < trace.numSamples; s++) {
    let sum = 0;
    for (let t = trace.tokenStart[s]; t < trace.tokenStart[s + 1]; t++) sum += trace.values.kl[t];
    kl[s] = sum;
    length[s] = trace.tokenStart[s + 1] - trace.tokenStart[s];
  }
  return {
    score: trace.score,
    oracle: trace.oracleScore,
    kl,
    length,
    clipped: clippedTokenCounts(trace, cliprange),
    searchText: Array.from({ length: trace.numSamples }, (_, s) =>
      `${trace.prompts[s]}\u0000${responseText(trace, s)}`.toLowerCase(),
    ),
  };
}

export function sampleValue(stats: SampleStats, trace: PackedPpoTrace, field: SampleField, s: number): number {
  switch (field) {
    case 'sample':
      return trace.sample[s];
    case 'score':
      return stats.score[s];
    case 'oracle':
      return stats.oracle[s];
    case 'kl':
      return stats.kl[s];
    case 'length':
      return stats.length[s];
    case 'clipped':
      return stats.clipped[s];
  }
}

export interface RowQuery {
  readonly sortKey: SortKey;
  readonly descending: boolean;
  readonly search: string;
  readonly filterKey: FilterKey;
  readonly min: number;
  readonly max: number;
}

/** The sample indices to show, filtered then sorted (NaN values last, ties by sample). */
export function visibleSamples(trace: PackedPpoTrace, stats: SampleStats, query: RowQuery): number[] {
  const needle = query.search.trim().toLowerCase();
  const rows: number[] = [];
  for (let s = 0; s < trace.numSamples; s++) {
    if (needle && !stats.searchText[s].includes(needle)) continue;
    const value = sampleValue(stats, trace, query.filterKey, s);
    if (value < query.min || value > query.max) continue;
    if ((Number.isFinite(query.min) || Number.isFinite(query.max)) && Number.isNaN(value)) continue;
    rows.push(s);
  }
  const sign = query.descending ? -1 : 1;
  return rows.sort((a, b) => {
    const va = sampleValue(stats, trace, query.sortKey, a);
    const vb = sampleValue(stats, trace, query.sortKey, b);
    if (Number.isNaN(va) !== Number.isNaN(vb)) return Number.isNaN(va) ? 1 : -1;
    return sign * (va - vb) || trace.sample[a] - trace.sample[b];
  });
}

export class RolloutView {
  readonly root = element('section', { className: 'rollouts' });
  private readonly controls = element('div', { className: 'controls', id: 'rollout-controls' });
  private readonly legend = element('div', { className: 'legend', id: 'legend' });
  private readonly listHost = element('div', { className: 'list-host' });
  private readonly status = element('p', { className: 'muted', id: 'rollout-status', role: 'status' });
  private readonly details = element('section', { className: 'sample-details', id: 'sample-details', hidden: true });
  private readonly tooltip = element('div', { id: 'token-tooltip', role: 'tooltip', hidden: true });
  private steps: number[] = [];
  private trace: PackedPpoTrace | undefined;
  private stats: SampleStats | undefined;
  private cliprange = 0.2;
  private list: VirtualList | undefined;
  private rows: number[] = [];
  private painter: TokenPainter | undefined;
  private requested: number | undefined;
  followLatest = true;
  colourBy: ColourBy = 'advantage';
  epoch = -1; // −1: the last epoch
  query: RowQuery = {
    sortKey: 'sample',
    descending: false,
    search: '',
    filterKey: 'score',
    min: -Infinity,
    max: Infinity,
  };

  constructor(private readonly callbacks: RolloutCallbacks) {
    this.root.append(this.controls, this.legend, this.status, this.listHost, this.details);
    document.body.append(this.tooltip);
    this.listHost.addEventListener('mouseover', (event) => this.showTooltip(event));
    this.listHost.addEventListener('mouseleave', () => (this.tooltip.hidden = true));
    this.renderControls();
    this.status.textContent = 'No trace yet: PPO writes traces/step-<n>.arrow after each step.';
  }

  get currentTrace(): PackedPpoTrace | undefined {
    return this.trace;
  }

  get currentCliprange(): number {
    return this.cliprange;
  }

  get listView(): VirtualList | undefined {
    return this.list;
  }

  setCliprange(cliprange: number | undefined): void {
    this.cliprange = cliprange ?? 0.2;
  }

  setSteps(steps: readonly number[]): void {
    const changed = steps.length !== this.steps.length || steps.at(-1) !== this.steps.at(-1);
    this.steps = [...steps];
    if (!changed) return;
    if (
      this.steps.length > 0 &&
      (this.followLatest || this.trace === undefined) &&
      this.requested !== this.steps.at(-1)
    )
      this.request(this.steps.at(-1) as number);
    this.renderControls();
  }

  private request(step: number): void {
    this.requested = step;
    this.status.textContent = `Loading step ${step}…`;
    this.callbacks.requestStep(step);
  }

  setTrace(trace: PackedPpoTrace): void {
    this.trace = trace;
    this.stats = sampleStats(trace, this.cliprange);
    this.renderControls();
    this.refresh();
  }

  setError(step: number, message: string): void {
    this.status.textContent = `Step ${step}: ${message}`;
  }

  private renderControls(): void {
    const index = this.trace ? Math.max(0, this.steps.indexOf(this.trace.step)) : Math.max(0, this.steps.length - 1);
    const stepLabel = element('output', { id: 'step-label' }, [
      this.trace ? `Step ${this.trace.step} (${index + 1} of ${this.steps.length})` : `${this.steps.length} steps`,
    ]);
    const slider = element('input', {
      id: 'step-slider',
      type: 'range',
      min: '0',
      max: String(Math.max(0, this.steps.length - 1)),
      value: String(index),
      disabled: this.steps.length < 2,
    });
    slider.setAttribute('aria-label', 'Step');
    slider.setAttribute('aria-valuetext', this.trace ? `Step ${this.trace.step}` : '');
    slider.addEventListener('input', () => {
      const step = this.steps[Number(slider.value)];
      stepLabel.textContent = `Step ${step} (${Number(slider.value) + 1} of ${this.steps.length})`;
      this.followLatest = Number(slider.value) === this.steps.length - 1 && this.followLatest;
      const follow = document.getElementById('follow-latest') as HTMLInputElement | null;
      if (follow) follow.checked = this.followLatest;
      this.request(step);
    });
    const follow = labelledInput(
      'follow-latest',
      'Follow latest',
      { type: 'checkbox', checked: this.followLatest },
      (input) => {
        this.followLatest = input.checked;
        if (input.checked && this.steps.length > 0) this.request(this.steps.at(-1) as number);
      },
    );
    const numEpochs = this.trace?.numEpochs ?? 1;
    const colourOptions = [...tokenFields, 'ratio', 'clip'].map((value) => ({
      value,
      label: colourByLabels[value as ColourBy],
    }));
    const epochOptions = [
      { value: '-1', label: 'last' },
      ...Array.from({ length: numEpochs }, (_, e) => ({ value: String(e), label: String(e + 1) })),
    ];
    const sortOptions = (Object.keys(sampleFieldLabels) as SortKey[]).map((value) => ({
      value,
      label: sampleFieldLabels[value],
    }));
    this.controls.replaceChildren(
      element('span', { className: 'control step-control' }, [
        element('label', { htmlFor: 'step-slider' }, ['Step']),
        slider,
        stepLabel,
      ]),
      follow,
      labelledSelect('colour-by', 'Colour by', colourOptions, this.colourBy, (value) => {
        this.colourBy = value as ColourBy;
        this.refresh();
      }),
      labelledSelect('epoch', 'Epoch', epochOptions, String(this.epoch), (value) => {
        this.epoch = Number(value);
        this.refresh();
      }),
      labelledSelect('sort-by', 'Sort by', sortOptions, this.query.sortKey, (value) =>
        this.setQuery({ sortKey: value as SortKey }),
      ),
      labelledSelect(
        'sort-order',
        'Order',
        [
          { value: 'asc', label: 'ascending' },
          { value: 'desc', label: 'descending' },
        ],
        this.query.descending ? 'desc' : 'asc',
        (value) => this.setQuery({ descending: value === 'desc' }),
      ),
      labelledInput(
        'search',
        'Search',
        { type: 'search', value: this.query.search, placeholder: 'text in prompt or response' },
        (input) => this.setQuery({ search: input.value }),
      ),
      labelledSelect(
        'filter-by',
        'Filter',
        sortOptions.filter((option) => option.value !== 'sample'),
        this.query.filterKey,
        (value) => this.setQuery({ filterKey: value as FilterKey }),
      ),
      labelledInput(
        'filter-min',
        'min',
        { type: 'number', step: 'any', value: Number.isFinite(this.query.min) ? String(this.query.min) : '' },
        (input) => this.setQuery({ min: input.value === '' ? -Infinity : Number(input.value) }),
      ),
      labelledInput(
        'filter-max',
        'max',
        { type: 'number', step: 'any', value: Number.isFinite(this.query.max) ? String(this.query.max) : '' },
        (input) => this.setQuery({ max: input.value === '' ? Infinity : Number(input.value) }),
      ),
    );
  }

  setQuery(change: Partial<RowQuery>): void {
    this.query = { ...this.query, ...change };
    this.refresh();
  }

  private makePainter(trace: PackedPpoTrace): TokenPainter {
    const colours = themeColours();
    const epoch =
      this.epoch < 0 ? Math.max(0, trace.numEpochs - 1) : Math.min(this.epoch, Math.max(0, trace.numEpochs - 1));
    const centre = this.colourBy === 'ratio' ? 1 : 0;
    const values =
      this.colourBy === 'ratio'
        ? trace.ratio.subarray(epoch * trace.numTokens, (epoch + 1) * trace.numTokens)
        : this.colourBy === 'clip'
          ? new Float32Array(0)
          : trace.values[this.colourBy];
    return {
      colourBy: this.colourBy,
      epoch,
      cliprange: this.cliprange,
      scale: divergingScale(values, centre, colours),
      clipColours: { 'removed-above': colours.red, 'removed-below': colours.purple, 'outside-kept': colours.yellow },
    };
  }

  /** Re-derives rows, legend and list from the trace and the controls. */
  refresh(): void {
    const trace = this.trace;
    const stats = this.stats;
    if (!trace || !stats) return;
    this.painter = this.makePainter(trace);
    this.renderLegend(this.painter);
    this.rows = visibleSamples(trace, stats, this.query);
    this.status.textContent = `Step ${trace.step}: ${this.rows.length} of ${trace.numSamples} samples · ${trace.numTokens} tokens · ε = ${this.cliprange}`;
    const width = Math.max(200, this.listHost.clientWidth || 800);
    const charsPerLine = Math.max(20, (width - 32) / 7.5);
    this.list = new VirtualList({
      count: this.rows.length,
      estimateHeight: (i) => {
        const s = this.rows[i];
        const chars =
          trace.prompts[s].length +
          (trace.tokenTextStart[trace.tokenStart[s + 1]] - trace.tokenTextStart[trace.tokenStart[s]]);
        return 30 + 21 * Math.ceil(chars / charsPerLine);
      },
      renderRow: (i) => this.renderRow(this.rows[i]),
      onActivate: (i) => this.showDetails(this.rows[i]),
    });
    this.list.viewport.id = 'samples';
    this.list.viewport.setAttribute(
      'aria-label',
      `Samples of step ${trace.step}, coloured by ${colourByLabels[this.colourBy]}`,
    );
    this.listHost.replaceChildren(this.list.viewport);
    this.list.render();
  }

  private renderLegend(painter: TokenPainter): void {
    const label = colourByLabels[painter.colourBy];
    if (painter.colourBy === 'clip') {
      const colours: Record<string, string> = {
        'removed-above': rgba(painter.clipColours['removed-above'], clipAlpha['removed-above']),
        'removed-below': rgba(painter.clipColours['removed-below'], clipAlpha['removed-below']),
        'outside-kept': rgba(painter.clipColours['outside-kept'], clipAlpha['outside-kept']),
      };
      const items = (['removed-above', 'removed-below', 'outside-kept', 'inside'] as ClipClass[]).map((cls) => {
        const swatch = element('span', { className: 'swatch' });
        swatch.style.backgroundColor = colours[cls] ?? 'transparent';
        return element('span', { className: 'legend-item', title: clipClassLabels[cls] }, [
          swatch,
          clipClassLabels[cls],
        ]);
      });
      this.legend.replaceChildren(
        element('span', { className: 'legend-title' }, [
          `clip, epoch ${painter.epoch + 1}, band [${formatNumber(1 - this.cliprange)}, ${formatNumber(1 + this.cliprange)}]:`,
        ]),
        ...items,
      );
      this.legend.setAttribute('aria-label', `Colours: clip class at epoch ${painter.epoch + 1}`);
      return;
    }
    const { centre, range } = painter.scale;
    const bar = element('span', { className: 'legend-bar', id: 'legend-bar' });
    bar.style.backgroundImage = legendGradient(painter.scale);
    const low = element('span', { className: 'legend-low', id: 'legend-low' }, [formatNumber(centre - range)]);
    const mid = element('span', { className: 'legend-mid' }, [formatNumber(centre)]);
    const high = element('span', { className: 'legend-high', id: 'legend-high' }, [formatNumber(centre + range)]);
    const epochNote = painter.colourBy === 'ratio' ? `, epoch ${painter.epoch + 1}` : '';
    this.legend.replaceChildren(
      element('span', { className: 'legend-title' }, [`${label}${epochNote}:`]),
      low,
      bar,
      high,
      element('span', { className: 'muted legend-centre' }, ['centre ', mid]),
    );
    this.legend.setAttribute(
      'aria-label',
      `Colour scale for ${label}: from ${formatNumber(centre - range)} (blue) through ${formatNumber(centre)} to ${formatNumber(centre + range)} (orange)`,
    );
  }

  private rowLabel(s: number): string {
    const trace = this.trace as PackedPpoTrace;
    const stats = this.stats as SampleStats;
    const oracle = Number.isNaN(stats.oracle[s]) ? '' : `, oracle ${formatNumber(stats.oracle[s])}`;
    return `Sample ${trace.sample[s]}: score ${formatNumber(stats.score[s])}${oracle}, KL ${formatNumber(stats.kl[s])}, ${stats.length[s]} tokens, ${stats.clipped[s]} clipped. Prompt: ${trace.prompts[s]} Response: ${responseText(trace, s)}`;
  }

  private renderRow(s: number): HTMLElement {
    const trace = this.trace as PackedPpoTrace;
    const stats = this.stats as SampleStats;
    const meta = element('div', { className: 'sample-meta' }, [
      element('span', { className: 'sample-id' }, [`#${trace.sample[s]}`]),
      element('span', { className: 'metric' }, [
        'score ',
        element('b', { className: 'sample-score' }, [formatNumber(stats.score[s])]),
      ]),
      ...(Number.isNaN(stats.oracle[s])
        ? []
        : [
            element('span', { className: 'metric' }, [
              'oracle ',
              element('b', { className: 'sample-oracle' }, [formatNumber(stats.oracle[s])]),
            ]),
          ]),
      element('span', { className: 'metric' }, [
        'KL ',
        element('b', { className: 'sample-kl' }, [formatNumber(stats.kl[s])]),
      ]),
      element('span', { className: 'metric sample-length' }, [`${stats.length[s]} tokens`]),
      element('span', { className: `metric sample-clipped${stats.clipped[s] > 0 ? ' has-clipped' : ''}` }, [
        `${stats.clipped[s]} clipped`,
      ]),
    ]);
    const text = element('div', { className: 'sample-text' }, [
      element('span', { className: 'prompt' }, [trace.prompts[s]]),
    ]);
    renderTokens(text, trace, s, this.painter as TokenPainter);
    const row = element('div', { className: 'sample-row' }, [meta, text]);
    row.dataset.sample = String(s);
    row.setAttribute('aria-label', this.rowLabel(s));
    return row;
  }

  /** The first `limit` rows of the current order as plain, non-virtual markup (for the HTML export). */
  exportRows(limit = 300): HTMLElement {
    const box = element('div', { className: 'static-rows' });
    if (!this.trace) return box;
    for (const s of this.rows.slice(0, limit)) box.append(this.renderRow(s));
    if (this.rows.length > limit)
      box.append(element('p', { className: 'muted' }, [`… and ${this.rows.length - limit} more samples.`]));
    return box;
  }

  private showTooltip(event: MouseEvent): void {
    const target = event.target as HTMLElement;
    const token = target.closest<HTMLElement>('.tok');
    const row = target.closest<HTMLElement>('[data-sample]');
    if (!token || !row || !this.trace) {
      this.tooltip.hidden = true;
      return;
    }
    const t = Number(token.dataset.t);
    const s = Number(row.dataset.sample);
    const lines = tokenDetails(this.trace, t, s, this.cliprange);
    this.tooltip.replaceChildren(
      element(
        'dl',
        {},
        lines.flatMap(([key, value]) => [element('dt', {}, [key]), element('dd', {}, [value])]),
      ),
    );
    this.tooltip.hidden = false;
    const box = token.getBoundingClientRect();
    const left = Math.min(box.left, window.innerWidth - this.tooltip.offsetWidth - 8);
    const below = box.bottom + 6 + this.tooltip.offsetHeight < window.innerHeight;
    this.tooltip.style.left = `${Math.max(4, left)}px`;
    this.tooltip.style.top = `${below ? box.bottom + 6 : Math.max(4, box.top - 6 - this.tooltip.offsetHeight)}px`;
  }

  /** The per-token table of sample s: every number, and the ratio per epoch with its clip class. */
  showDetails(s: number): void {
    const trace = this.trace;
    if (!trace) return;
    const heading = element('h2', { id: 'details-heading', tabIndex: -1 }, [
      `Sample ${trace.sample[s]} · step ${trace.step}`,
    ]);
    const close = button('close-details', 'Close', 'Close the token table (Escape)', () => this.hideDetails());
    const follow = button('follow-prompt', 'Prompt over time', 'Show this prompt’s responses at every step', () =>
      this.callbacks.followPrompt(trace.prompts[s]),
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
    const painter = this.painter as TokenPainter;
    for (let t = trace.tokenStart[s], p = 0; t < trace.tokenStart[s + 1]; t++, p++) {
      const advantage = trace.values.advantage[t];
      const cells = epochs.map((e) => {
        const ratio = trace.ratio[e * trace.numTokens + t];
        const cls = classifyClip(ratio, advantage, this.cliprange);
        const cell = element('td', { className: `ratio clip-${cls}`, title: clipClassLabels[cls] }, [
          formatNumber(ratio),
          isRemoved(cls) ? ' ✂' : '',
        ]);
        cell.dataset.clip = cls;
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
    const band = element('p', { className: 'muted' }, [
      `Clip band [${formatNumber(1 - this.cliprange)}, ${formatNumber(1 + this.cliprange)}]. ✂: clipping removed the token’s gradient (A > 0 and r > 1 + ε, or A < 0 and r < 1 − ε).`,
    ]);
    this.details.replaceChildren(
      element('div', { className: 'toolbar' }, [heading, follow, close]),
      band,
      element('div', { className: 'table-scroll' }, [
        element('table', { className: 'data tokens-table', id: 'tokens-table' }, [
          element('thead', {}, [header]),
          body,
        ]),
      ]),
    );
    this.details.hidden = false;
    this.details.onkeydown = (event) => {
      if (event.key === 'Escape') this.hideDetails();
    };
    heading.focus();
  }

  hideDetails(): void {
    this.details.hidden = true;
    this.list?.focusRow(this.list.activeIndex);
  }
}
