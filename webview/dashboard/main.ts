/**
 * The dashboard webview: a run's header and five tabs — Metrics (charts, comparison, warnings),
 * Rollouts (per-token heatmap), Clipping, Prompt over time — plus "Export as HTML". Without a run it
 * lists the workspace's runs (runList.ts). Every host message is handled in `receive`'s switch.
 */
import 'uplot/dist/uPlot.min.css';
import './dashboard.css';
import {
  assertNever,
  type DashboardRunInfo,
  type DashboardRunsMessage,
  type FromDashboardMessage,
  type ToDashboardMessage,
} from '../../src/shared/protocol';
import { connectToHost } from '../shared/hostChannel';
import { ClipView } from './clipView';
import { button, element } from './dom';
import { serialiseView } from './exportView';
import { MetricsView } from './metricsView';
import { PromptHistoryView } from './promptHistoryView';
import { RolloutView } from './rolloutView';
import { runList } from './runList';

const host = connectToHost<ToDashboardMessage, FromDashboardMessage>();
const app = document.getElementById('app') as HTMLElement;

type TabId = 'metrics' | 'rollouts' | 'clipping' | 'history';
const tabTitles: Record<TabId, string> = {
  metrics: 'Metrics',
  rollouts: 'Rollouts',
  clipping: 'Clipping',
  history: 'Prompt over time',
};

const metrics = new MetricsView({ compare: (runIds) => host.post({ type: 'dashboard/compare', runIds }) });
const rollouts = new RolloutView({
  requestStep: (step) => host.post({ type: 'dashboard/requestTrace', step }),
  followPrompt: (prompt) => {
    selectTab('history');
    history.follow(prompt);
  },
});
const clipping = new ClipView();
const history = new PromptHistoryView((prompt) => host.post({ type: 'dashboard/requestPromptHistory', prompt }));

const header = element('header', { className: 'run-header', id: 'run-header' });
const tabList = element('div', { className: 'tabs', role: 'tablist', id: 'tabs' });
const panels = new Map<TabId, HTMLElement>();
const tabs = new Map<TabId, HTMLButtonElement>();
const statusLine = element('p', { className: 'muted', id: 'dashboard-status', role: 'status' });
let run: DashboardRunInfo | undefined;
/** What was skipped while reading a run of another engine (`file:line: …`), newest last. */
const problems: string[] = [];
/** The most problems the header lists (the host's log has them all). */
const maxShownProblems = 200;
/** The latest run list: the comparison choices once a run is shown (it may arrive before the run). */
let lastRunList: DashboardRunsMessage | undefined;
let activeTab: TabId = (host.getState<{ tab?: TabId }>()?.tab as TabId | undefined) ?? 'metrics';

for (const [id, view] of [
  ['metrics', metrics.root],
  ['rollouts', rollouts.root],
  ['clipping', clipping.root],
  ['history', history.root],
] as [TabId, HTMLElement][]) {
  const tab = element(
    'button',
    { id: `tab-${id}`, type: 'button', className: 'tab', role: 'tab' } as Partial<HTMLButtonElement>,
    [tabTitles[id]],
  );
  tab.setAttribute('aria-controls', `panel-${id}`);
  tab.addEventListener('click', () => selectTab(id));
  tabs.set(id, tab);
  tabList.append(tab);
  const panel = element('div', { id: `panel-${id}`, className: 'tabpanel', role: 'tabpanel' }, [view]);
  panel.setAttribute('aria-labelledby', `tab-${id}`);
  panels.set(id, panel);
}
// Arrow keys move between tabs (WAI-ARIA tabs pattern); Tab moves into the panel.
tabList.addEventListener('keydown', (event) => {
  const order = [...tabs.keys()];
  const index = order.indexOf(activeTab);
  const next =
    event.key === 'ArrowRight'
      ? index + 1
      : event.key === 'ArrowLeft'
        ? index - 1
        : event.key === 'Home'
          ? 0
          : event.key === 'End'
            ? order.length - 1
            : undefined;
  if (next === undefined) return;
  event.preventDefault();
  selectTab(order[(next + order.length) % order.length]);
  tabs.get(activeTab)?.focus();
});

function selectTab(id: TabId): void {
  activeTab = id;
  host.setState({ tab: id });
  for (const [tabId, tab] of tabs) {
    const selected = tabId === id;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    (panels.get(tabId) as HTMLElement).hidden = !selected;
  }
  if (id === 'rollouts') rollouts.listView?.schedule();
  if (id === 'metrics') metrics.draw();
}

function exportView(): void {
  const panel = panels.get(activeTab) as HTMLElement;
  const replacements = new Map<HTMLElement, HTMLElement>();
  const list = rollouts.listView?.viewport;
  if (activeTab === 'rollouts' && list) replacements.set(list, rollouts.exportRows());
  const stepSuffix = activeTab === 'rollouts' && rollouts.currentTrace ? ` - step ${rollouts.currentTrace.step}` : '';
  const title = `${run?.name ?? 'run'} - ${tabTitles[activeTab]}${stepSuffix}`;
  host.post(serialiseView(title, [header, panel], replacements));
  statusLine.textContent = 'Exporting…';
}

/**
 * The newest metrics step of each run: run.json's step changes only at checkpoints, so a run followed from its folder
 * (a cluster job, a terminal) shows its progress from the metrics that arrive in between.
 */
const latestMetricStep = new Map<string, number>();

function noteMetricSteps(runId: string, reset: boolean, points: readonly { readonly step?: number }[]): boolean {
  const before = latestMetricStep.get(runId);
  let latest = reset ? undefined : before;
  for (const point of points)
    if (typeof point.step === 'number' && Number.isFinite(point.step)) latest = Math.max(latest ?? 0, point.step);
  if (latest === undefined) latestMetricStep.delete(runId);
  else latestMetricStep.set(runId, latest);
  return latest !== before;
}

function renderHeader(info: DashboardRunInfo): void {
  const step = Math.max(info.step ?? 0, latestMetricStep.get(info.id) ?? 0);
  const progress = info.maxSteps !== undefined ? ` · step ${step} of ${info.maxSteps}` : '';
  header.replaceChildren(
    element('div', { className: 'title' }, [
      element('h1', { id: 'run-name' }, [info.name]),
      element('span', { className: `status status-${info.status}`, id: 'run-status' }, [info.status]),
      ...(info.engine ? [element('span', { className: 'engine', id: 'run-engine' }, [info.engine])] : []),
      element('span', { className: 'muted' }, [`${info.stage ?? ''}${progress}`]),
    ]),
    element('div', { className: 'actions' }, [
      button('export-html', 'Export as HTML', 'Save the current view as a self-contained HTML page', exportView),
      button('refresh', 'Refresh', 'Read the run again', () => host.post({ type: 'dashboard/refresh' })),
    ]),
    element('p', { className: 'muted run-dir' }, [info.runDir]),
    ...(info.error ? [element('p', { className: 'problem' }, [info.error])] : []),
    ...problemList(),
  );
}

/** The read problems as a collapsed list under the header ("3 lines skipped while reading"). */
function problemList(): HTMLElement[] {
  if (problems.length === 0) return [];
  const items = problems.slice(-maxShownProblems).map((problem) => element('li', {}, [problem]));
  return [
    element('details', { className: 'problem', id: 'read-problems' }, [
      element('summary', {}, [`${problems.length} skipped while reading the run's files`]),
      element('ul', {}, items),
    ]),
  ];
}

function showRun(info: DashboardRunInfo): void {
  const first = run === undefined;
  run = info;
  renderHeader(info);
  rollouts.setNotLogged(info);
  metrics.setNotLogged(info);
  if (rollouts.setCliprange(info.cliprange)) showClipping();
  metrics.setMainRun(info.id);
  if (first && lastRunList) metrics.setRunList(lastRunList.runs);
  if (first) {
    app.replaceChildren(header, tabList, statusLine, ...panels.values());
    selectTab(activeTab);
    app.setAttribute('aria-busy', 'false');
  }
}

/** The Clipping tab follows the Rollouts tab's trace, with its clip classes and the header's ε. */
function showClipping(): void {
  const trace = rollouts.currentTrace;
  const classes = rollouts.currentClipClasses;
  if (trace && classes) clipping.setTrace(trace, classes, run?.cliprange);
}

/** Without a run: the workspace's runs, each with a button that opens its dashboard. */
function renderRunList(message: DashboardRunsMessage): void {
  app.replaceChildren(
    ...runList(message, {
      refresh: () => host.post({ type: 'dashboard/refresh' }),
      openRun: (runId) => host.post({ type: 'dashboard/openRun', runId }),
    }),
  );
  app.setAttribute('aria-busy', 'false');
}

/** For the benchmark and tests: when the latest trace arrived and when its first screen was painted. */
interface FirstScreen {
  step: number;
  receivedAt: number;
  renderedAt: number;
  paintedAt?: number;
  rows: number;
}
const timing = window as unknown as { __rlhfFirstScreen?: FirstScreen };

function receive(message: ToDashboardMessage): void {
  switch (message.type) {
    case 'dashboard/runs':
      lastRunList = message;
      if (run) metrics.setRunList(message.runs);
      else renderRunList(message);
      break;
    case 'dashboard/run':
      showRun(message.run);
      break;
    case 'dashboard/metrics':
      metrics.addPoints(message.runId, message.runName, message.reset, message.points);
      if (noteMetricSteps(message.runId, message.reset, message.points) && run?.id === message.runId) renderHeader(run);
      break;
    case 'dashboard/compared':
      metrics.setCompared(message.runIds);
      break;
    case 'dashboard/steps':
      if (message.traceKind === 'ppo' || message.traceKind === null) rollouts.setSteps(message.steps);
      else
        rollouts.setError(
          message.steps.at(-1) ?? 0,
          `this run writes ${message.traceKind} traces; the heatmap shows PPO traces.`,
        );
      break;
    case 'dashboard/trace': {
      const receivedAt = performance.now();
      rollouts.setTrace(message.trace);
      const rows = rollouts.listView?.renderedIndices().length ?? 0;
      const record: FirstScreen = { step: message.trace.step, receivedAt, renderedAt: performance.now(), rows };
      timing.__rlhfFirstScreen = record;
      requestAnimationFrame(() => setTimeout(() => (record.paintedAt = performance.now()), 0));
      // The other tabs follow the same step, after the heatmap's first screen.
      requestAnimationFrame(() =>
        setTimeout(() => {
          showClipping();
          history.setTrace(message.trace);
        }, 0),
      );
      break;
    }
    case 'dashboard/traceError':
      rollouts.setError(message.step, message.message);
      break;
    case 'dashboard/promptHistory':
      history.setHistory(message);
      break;
    case 'dashboard/problems':
      problems.push(...message.problems);
      if (run) renderHeader(run);
      break;
    case 'dashboard/exported':
      statusLine.textContent = message.file ? `Exported to ${message.file}` : 'Export cancelled.';
      break;
    default:
      assertNever(message, 'dashboard webview');
  }
}

metrics.onWarnings = (warnings) => {
  const tab = tabs.get('metrics') as HTMLButtonElement;
  tab.textContent = warnings.length > 0 ? `Metrics ⚠ ${warnings.length}` : 'Metrics';
  tab.title = warnings.map((warning) => warning.title).join('\n');
};

host.listen(receive);
