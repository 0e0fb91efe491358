/**
 * The Rollouts tab: one step's samples as rows — prompt, then the response's tokens as a heatmap —
 * under the controls bar (rolloutControls.ts) and the scale's legend (rolloutLegend.ts), with a tooltip
 * with every number of the hovered token, and the token table of the chosen sample (sampleDetails.ts;
 * keyboard: Enter on a row). Which rows, in what order: visibleSamples.ts.
 */
import type { RunSetting } from '../../src/shared/dashboardMessages';
import { responseText, type PackedPpoTrace } from '../../src/shared/packedTrace';
import { traceClipClasses, type TraceClipClasses } from './clipAnalysis';
import { divergingScale, formatNumber, themeColours } from './colorScale';
import { element } from './dom';
import { RolloutControls } from './rolloutControls';
import { fieldOfColour, isAbsent, notLoggedText, type NotLoggedSource } from './notLogged';
import { renderRolloutLegend } from './rolloutLegend';
import { showSampleDetails } from './sampleDetails';
import { colourByLabels, renderTokens, tokenDetails, type TokenPainter } from './tokenView';
import { VirtualList } from './virtualList';
import { sampleStats, visibleSamples, type SampleStats } from './visibleSamples';

/** "2 clipped", or that the count is unknown (a version-1 trace without the run's ε). */
const clippedText = (count: number) => (Number.isNaN(count) ? 'clipped unknown' : `${count} clipped`);

export interface RolloutCallbacks {
  requestStep(step: number): void;
  followPrompt(prompt: string): void;
}

/** A sample's token count; "tokens —" when the trace has no tokens at all (not logged, not zero). */
function tokenCount(trace: PackedPpoTrace, length: number): string {
  return trace.numTokens === 0 && trace.absent.includes('tokens') ? 'tokens —' : `${length} tokens`;
}

export class RolloutView {
  readonly root = element('section', { className: 'rollouts' });
  private readonly controls = new RolloutControls({
    requestStep: (step) => this.request(step),
    refresh: () => this.refresh(),
  });
  private readonly legend = element('div', { className: 'legend', id: 'legend' });
  private readonly listHost = element('div', { className: 'list-host' });
  private readonly status = element('p', { className: 'muted', id: 'rollout-status', role: 'status' });
  private readonly details = element('section', { className: 'sample-details', id: 'sample-details', hidden: true });
  private readonly tooltip = element('div', { id: 'token-tooltip', role: 'tooltip', hidden: true });
  private trace: PackedPpoTrace | undefined;
  private stats: SampleStats | undefined;
  /** ε as the run's header has it: no default, the views say when it is unknown. */
  private cliprange: RunSetting<number> | undefined;
  private clipClasses: TraceClipClasses | undefined;
  private list: VirtualList | undefined;
  private rows: number[] = [];
  private painter: TokenPainter | undefined;
  private requested: number | undefined;
  /** The run's engine and what it does not log (absent for the lens's own runs). */
  private run: NotLoggedSource | undefined;

  constructor(private readonly callbacks: RolloutCallbacks) {
    this.root.append(this.controls.root, this.legend, this.status, this.listHost, this.details);
    document.body.append(this.tooltip);
    this.listHost.addEventListener('mouseover', (event) => this.showTooltip(event));
    this.listHost.addEventListener('mouseleave', () => (this.tooltip.hidden = true));
    this.renderControls();
    this.status.textContent = 'No trace yet: PPO writes traces/step-<n>.arrow after each step.';
  }

  get currentTrace(): PackedPpoTrace | undefined {
    return this.trace;
  }

  /** The shown trace's clip classes (recorded, derived from the header's ε, or unknown). */
  get currentClipClasses(): TraceClipClasses | undefined {
    return this.clipClasses;
  }

  get listView(): VirtualList | undefined {
    return this.list;
  }

  /**
   * The run header's ε (sent again whenever run.json changes). Returns true when it changed while a trace
   * is shown: the trace was redrawn (a version-1 trace derives its clip classes from ε), and the caller
   * redraws the other views that show the band.
   */
  setCliprange(cliprange: RunSetting<number>): boolean {
    const key = (setting: RunSetting<number> | undefined) =>
      setting === undefined ? '' : setting.value === undefined ? `missing ${setting.missing}` : `${setting.value}`;
    const changed = key(cliprange) !== key(this.cliprange);
    this.cliprange = cliprange;
    if (!changed || !this.trace) return false;
    this.setTrace(this.trace);
    return true;
  }

  /** The run header's engine and not-logged fields: the empty views explain themselves with them. */
  setNotLogged(run: NotLoggedSource): void {
    this.run = run;
    if (this.trace) this.refresh();
    else if (this.controls.steps.length === 0) this.showNoSteps();
  }

  /** No step has rollouts: for a run of another engine, says what it would take. */
  private showNoSteps(): void {
    const why = notLoggedText(this.run, 'rollouts');
    if (why) this.status.textContent = `No rollouts. ${why}`;
  }

  setSteps(steps: readonly number[]): void {
    const controls = this.controls;
    if (steps.length === 0) this.showNoSteps();
    const changed = steps.length !== controls.steps.length || steps.at(-1) !== controls.steps.at(-1);
    controls.steps = [...steps];
    if (!changed) return;
    if (
      controls.steps.length > 0 &&
      (controls.followLatest || this.trace === undefined) &&
      this.requested !== controls.steps.at(-1)
    )
      this.request(controls.steps.at(-1) as number);
    this.renderControls();
  }

  private request(step: number): void {
    this.requested = step;
    this.status.textContent = `Loading step ${step}…`;
    this.callbacks.requestStep(step);
  }

  setTrace(trace: PackedPpoTrace): void {
    this.trace = trace;
    this.clipClasses = traceClipClasses(trace, this.cliprange);
    this.stats = sampleStats(trace, this.clipClasses);
    this.renderControls();
    this.refresh();
  }

  setError(step: number, message: string): void {
    this.status.textContent = `Step ${step}: ${message}`;
  }

  private renderControls(): void {
    this.controls.render(this.trace);
  }

  private makePainter(trace: PackedPpoTrace): TokenPainter {
    const colours = themeColours();
    const { colourBy, epoch: chosenEpoch } = this.controls;
    const epoch =
      chosenEpoch < 0 ? Math.max(0, trace.numEpochs - 1) : Math.min(chosenEpoch, Math.max(0, trace.numEpochs - 1));
    const centre = colourBy === 'ratio' ? 1 : 0;
    const values =
      colourBy === 'ratio'
        ? trace.ratio.subarray(epoch * trace.numTokens, (epoch + 1) * trace.numTokens)
        : colourBy === 'clip'
          ? new Float32Array(0)
          : trace.values[colourBy];
    return {
      colourBy,
      epoch,
      clipClasses: this.clipClasses ?? traceClipClasses(trace, this.cliprange),
      scale: divergingScale(values, centre, colours),
      clipColours: { 'clipped-above': colours.red, 'clipped-below': colours.purple, 'outside-kept': colours.yellow },
    };
  }

  /** Re-derives rows, legend and list from the trace and the controls. */
  refresh(): void {
    const trace = this.trace;
    const stats = this.stats;
    if (!trace || !stats) return;
    this.painter = this.makePainter(trace);
    renderRolloutLegend(this.legend, this.painter, this.cliprange);
    const colourBy = this.controls.colourBy;
    const absentWhy = isAbsent(trace, colourBy) ? notLoggedText(this.run, fieldOfColour(colourBy)) : undefined;
    if (absentWhy)
      this.legend.replaceChildren(element('span', { className: 'not-logged', id: 'legend-not-logged' }, [absentWhy]));
    this.rows = visibleSamples(trace, stats, this.controls.query);
    const cliprangeText =
      this.cliprange?.value === undefined ? 'ε unknown' : `ε = ${formatNumber(this.cliprange.value)}`;
    const tokensWhy = trace.numTokens === 0 ? notLoggedText(this.run, 'tokens') : undefined;
    // A trace without tokens (another engine's text-only dump) has no token count to give: why, instead.
    this.status.textContent =
      `Step ${trace.step}: ${this.rows.length} of ${trace.numSamples} samples · ` +
      `${tokensWhy ? '' : `${trace.numTokens} tokens · `}${cliprangeText}${tokensWhy ? ` · ${tokensWhy}` : ''}`;
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
      `Samples of step ${trace.step}, coloured by ${colourByLabels[this.controls.colourBy]}`,
    );
    this.listHost.replaceChildren(this.list.viewport);
    this.list.render();
  }

  private rowLabel(s: number): string {
    const trace = this.trace as PackedPpoTrace;
    const stats = this.stats as SampleStats;
    const oracle = Number.isNaN(stats.oracle[s]) ? '' : `, oracle ${formatNumber(stats.oracle[s])}`;
    return (
      `Sample ${trace.sample[s]}: score ${formatNumber(stats.score[s])}${oracle}, KL ${formatNumber(stats.kl[s])}, ` +
      `${tokenCount(trace, stats.length[s])}, ${clippedText(stats.clipped[s])}. ` +
      `Prompt: ${trace.prompts[s]} Response: ${responseText(trace, s)}`
    );
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
      element('span', { className: 'metric sample-length' }, [tokenCount(trace, stats.length[s])]),
      element('span', { className: `metric sample-clipped${stats.clipped[s] > 0 ? ' has-clipped' : ''}` }, [
        clippedText(stats.clipped[s]),
      ]),
    ]);
    const text = element('div', { className: 'sample-text' }, [
      element('span', { className: 'prompt' }, [trace.prompts[s]]),
    ]);
    renderTokens(text, trace, s, this.painter as TokenPainter);
    // A sample of another engine without tokens (TRL completions, verl): its response as plain, uncoloured text.
    if (trace.tokenStart[s] === trace.tokenStart[s + 1] && responseText(trace, s) !== '')
      text.append(element('span', { className: 'untokenized-response' }, [responseText(trace, s)]));
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
    const lines = tokenDetails(this.trace, t, s, this.clipClasses ?? traceClipClasses(this.trace, this.cliprange));
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
    showSampleDetails(
      this.details,
      { trace, sample: s, painter: this.painter as TokenPainter, cliprange: this.cliprange },
      { close: () => this.hideDetails(), followPrompt: (prompt) => this.callbacks.followPrompt(prompt) },
    );
  }

  hideDetails(): void {
    this.details.hidden = true;
    this.list?.focusRow(this.list.activeIndex);
  }
}
