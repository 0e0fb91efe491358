/**
 * The Metrics tab: one uPlot chart per metric of metrics.jsonl, grouped by TRL's namespaces, with
 * smoothing, an x axis by step or episode, other runs overlaid for comparison, and the training
 * warnings above the charts. New points are drawn with `setData` on the next animation frame.
 */
import uPlot from 'uplot';
import type { MetricPoint } from '../../src/shared/dashboardMessages';
import type { RunSummary } from '../../src/shared/runSummary';
import { formatNumber, rgba, themeColour } from './colorScale';
import { type NotLoggedSource, notLoggedText } from './notLogged';
import { element, labelledInput, labelledSelect } from './dom';
import { groupMetrics, seriesOf, smooth, type XAxis } from './metricSeries';
import { detectWarnings, type TrainingWarning } from './warnings';

export interface MetricsCallbacks {
  compare(runIds: string[]): void;
}

interface RunMetrics {
  name: string;
  points: MetricPoint[];
}

const seriesVariables = [
  '--vscode-charts-blue',
  '--vscode-charts-orange',
  '--vscode-charts-green',
  '--vscode-charts-purple',
  '--vscode-charts-red',
  '--vscode-charts-yellow',
];
const seriesFallbacks = [
  { r: 55, g: 148, b: 255 },
  { r: 209, g: 134, b: 22 },
  { r: 137, g: 209, b: 133 },
  { r: 177, g: 128, b: 215 },
  { r: 241, g: 76, b: 76 },
  { r: 204, g: 167, b: 0 },
];

/** At most this many points in view: each gets a marker (a lone eval point draws no line). */
const sparsePoints = 20;

function markersWhenSparse(self: uPlot, seriesIndex: number, first: number, last: number): boolean {
  const values = self.data[seriesIndex];
  let count = 0;
  for (let index = first; index <= last; index++)
    if (values[index] !== null && values[index] !== undefined && ++count > sparsePoints) return false;
  return true;
}

const compactNumber = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });

/** Tick labels that fit the axis: 100K, not 100,000 cut to "00,000". */
const yTickLabels = (_self: uPlot, ticks: number[]): string[] =>
  ticks.map((tick) =>
    tick === null || tick === undefined ? '' : Math.abs(tick) >= 1e4 ? compactNumber.format(tick) : uPlot.fmtNum(tick),
  );

export class MetricsView {
  readonly root = element('section', { className: 'metrics' });
  private readonly controls = element('div', { className: 'controls', id: 'metrics-controls' });
  private readonly warningsBox = element('div', { id: 'warnings', role: 'region' });
  private readonly chartsBox = element('div', { id: 'charts' });
  private readonly runs = new Map<string, RunMetrics>();
  private mainRunId = '';
  private otherRuns: RunSummary[] = [];
  private compared = new Set<string>();
  private charts = new Map<string, { plot: uPlot; cell: HTMLElement; label: HTMLElement }>();
  private layoutKey = '';
  private frame = 0;
  smoothing = 0.6;
  axis: XAxis = 'step';
  warnings: TrainingWarning[] = [];
  onWarnings: (warnings: TrainingWarning[]) => void = () => undefined;

  constructor(private readonly callbacks: MetricsCallbacks) {
    this.warningsBox.setAttribute('aria-label', 'Training warnings');
    this.root.append(this.controls, this.warningsBox, this.chartsBox);
    this.renderControls();
    new ResizeObserver(() => this.resizeCharts()).observe(this.chartsBox);
  }

  /** For a run of another engine: why it has no metrics ("metrics: not logged by verl — …"). */
  private noMetricsWhy: string | undefined;

  /** The run header's engine and not-logged fields (the empty view says how to get metrics). */
  setNotLogged(run: NotLoggedSource): void {
    const why = notLoggedText(run, 'metrics');
    const text = why ? `No metrics. ${why}` : undefined;
    if (text === this.noMetricsWhy) return;
    this.noMetricsWhy = text;
    const shown = document.getElementById('no-metrics');
    if (shown && text) shown.textContent = text;
  }

  setMainRun(runId: string): void {
    this.mainRunId = runId;
  }

  setRunList(runs: readonly RunSummary[]): void {
    this.otherRuns = runs.filter((run) => run.id !== this.mainRunId);
    this.renderControls();
  }

  /** The runs the host overlays (a sweep opened together): their boxes show checked, and unchecking one drops it. */
  setCompared(runIds: readonly string[]): void {
    this.compared = new Set(runIds.filter((id) => id !== this.mainRunId));
    this.renderControls();
  }

  /** Appends (or, with reset, replaces) a run's points and redraws on the next frame. */
  addPoints(runId: string, runName: string, reset: boolean, points: readonly MetricPoint[]): void {
    if (reset && points.length === 0 && runId !== this.mainRunId) this.runs.delete(runId);
    else {
      const run = this.runs.get(runId) ?? { name: runName, points: [] };
      if (reset) run.points = [];
      run.points.push(...points);
      if (runName) run.name = runName;
      this.runs.set(runId, run);
    }
    this.schedule();
  }

  pointsOf(runId: string): readonly MetricPoint[] {
    return this.runs.get(runId)?.points ?? [];
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private renderControls(): void {
    const smoothing = labelledInput(
      'smoothing',
      'Smoothing',
      { type: 'range', min: '0', max: '0.99', step: '0.01', value: String(this.smoothing) },
      (input) => {
        this.smoothing = Number(input.value);
        output.textContent = input.value;
        this.draw();
      },
    );
    const output = element('output', { id: 'smoothing-value' }, [String(this.smoothing)]);
    smoothing.append(output);
    const axis = labelledSelect(
      'x-axis',
      'X axis',
      [
        { value: 'step', label: 'step' },
        { value: 'episode', label: 'episode' },
      ],
      this.axis,
      (value) => {
        this.axis = value as XAxis;
        this.layoutKey = '';
        this.draw();
      },
    );
    const compare = element('fieldset', { className: 'compare', id: 'compare' }, [
      element('legend', {}, ['Compare with']),
    ]);
    if (this.otherRuns.length === 0) compare.append(element('span', { className: 'muted' }, ['no other runs']));
    for (const run of this.otherRuns) {
      const id = `compare-${run.id}`;
      compare.append(
        labelledInput(
          id,
          run.name,
          { type: 'checkbox', checked: this.compared.has(run.id), value: run.id },
          (input) => {
            if (input.checked) this.compared.add(run.id);
            else this.compared.delete(run.id);
            this.callbacks.compare([...this.compared]);
          },
        ),
      );
    }
    this.controls.replaceChildren(smoothing, axis, compare);
  }

  private colours(): string[] {
    return seriesVariables.map((variable, i) => rgba(themeColour(variable, seriesFallbacks[i]), 1));
  }

  /** Run ids in drawing order: this panel's run first. */
  private runOrder(): string[] {
    return [this.mainRunId, ...[...this.runs.keys()].filter((id) => id !== this.mainRunId)].filter((id) =>
      this.runs.has(id),
    );
  }

  private dataFor(metric: string, order: string[]): uPlot.AlignedData {
    const tables: uPlot.AlignedData[] = order.map((id) => {
      const { x, y } = seriesOf(this.runs.get(id)?.points ?? [], metric, this.axis);
      return this.smoothing > 0 ? [x, smooth(y, this.smoothing), y] : [x, y];
    });
    if (tables.length === 1) return tables[0];
    return uPlot.join(tables);
  }

  draw(): void {
    const order = this.runOrder();
    const main = this.runs.get(this.mainRunId)?.points ?? [];
    this.warnings = detectWarnings(main);
    this.renderWarnings();
    this.onWarnings(this.warnings);
    const groups = groupMetrics(order.map((id) => this.runs.get(id)?.points ?? []));
    const key = JSON.stringify([[...groups], order, this.axis, this.smoothing > 0]);
    if (key !== this.layoutKey) {
      this.layoutKey = key;
      this.build(groups, order);
      return;
    }
    for (const [metric, chart] of this.charts) {
      chart.plot.setData(this.dataFor(metric, order));
      this.labelChart(metric, chart.label, order);
    }
  }

  private labelChart(metric: string, label: HTMLElement, order: string[]): void {
    const { x, y } = seriesOf(this.runs.get(order[0])?.points ?? [], metric, this.axis);
    const latest =
      y.length > 0 ? `latest ${formatNumber(y[y.length - 1])} at ${this.axis} ${x[x.length - 1]}` : 'no points yet';
    label.setAttribute('aria-label', `${metric}: ${y.length} points, ${latest}`);
  }

  private build(groups: Map<string, string[]>, order: string[]): void {
    for (const chart of this.charts.values()) chart.plot.destroy();
    this.charts.clear();
    const colours = this.colours();
    const foreground = rgba(themeColour('--vscode-foreground', { r: 204, g: 204, b: 204 }), 1);
    const grid = rgba(themeColour('--vscode-foreground', { r: 204, g: 204, b: 204 }), 0.12);
    const sections: HTMLElement[] = [];
    if (groups.size === 0)
      sections.push(
        element('p', { className: 'muted', id: 'no-metrics' }, [
          this.noMetricsWhy ?? 'No metrics yet: the trainer appends a line to metrics.jsonl after each step.',
        ]),
      );
    for (const [namespace, metrics] of groups) {
      const cells = metrics.map((metric) => {
        const title = element('h3', {}, [metric]);
        const cell = element('figure', { className: 'chart' }, [title]);
        cell.dataset.metric = metric;
        cell.setAttribute('role', 'img');
        const series: uPlot.Series[] = [{ label: this.axis }];
        order.forEach((id, r) => {
          const name = this.runs.get(id)?.name ?? id;
          const colour = colours[r % colours.length];
          series.push({
            label: order.length > 1 ? name : metric,
            stroke: colour,
            width: 2,
            spanGaps: true,
            points: { show: markersWhenSparse },
          });
          if (this.smoothing > 0)
            series.push({
              label: `${name} (raw)`,
              stroke: colour.replace(/, 1\)$/, ', 0.25)'),
              width: 1,
              spanGaps: true,
              points: { show: false },
            });
        });
        const plot = new uPlot(
          {
            width: 360,
            height: 170,
            series,
            scales: { x: { time: false } },
            legend: { show: order.length > 1 },
            cursor: { drag: { x: true, y: false } },
            axes: [
              { stroke: foreground, grid: { stroke: grid }, ticks: { stroke: grid } },
              { stroke: foreground, grid: { stroke: grid }, ticks: { stroke: grid }, size: 56, values: yTickLabels },
            ],
          },
          this.dataFor(metric, order),
          cell,
        );
        this.charts.set(metric, { plot, cell, label: cell });
        this.labelChart(metric, cell, order);
        return cell;
      });
      sections.push(
        element('section', { className: 'metric-group', id: `group-${namespace}` }, [
          element('h2', {}, [namespace]),
          element('div', { className: 'chart-grid' }, cells),
        ]),
      );
    }
    this.chartsBox.replaceChildren(...sections);
    this.resizeCharts();
  }

  private resizeCharts(): void {
    for (const { plot, cell } of this.charts.values()) {
      const width = Math.max(200, Math.floor(cell.clientWidth) - 4);
      if (Math.abs(plot.width - width) > 2) plot.setSize({ width, height: 170 });
    }
  }

  private renderWarnings(): void {
    if (this.warnings.length === 0) {
      this.warningsBox.replaceChildren();
      return;
    }
    this.warningsBox.replaceChildren(
      ...this.warnings.map((warning) =>
        element('div', { className: `warning warning-${warning.kind}`, role: 'note' }, [
          element('strong', {}, [`⚠ ${warning.title}`]),
          ` (step ${warning.step}) `,
          element('span', {}, [warning.detail]),
        ]),
      ),
    );
  }
}
