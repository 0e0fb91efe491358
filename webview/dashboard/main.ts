/**
 * Dashboard webview: lists the workspace's runs (name, status, start time) and the run.json files
 * that could not be read. Later views (metrics, per-token heatmaps) grow from here.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import './dashboard.css';
import { assertNever, type DashboardRunsMessage, type FromDashboardMessage, type ToDashboardMessage } from '../../src/shared/protocol';
import { connectToHost } from '../shared/hostChannel';

const host = connectToHost<ToDashboardMessage, FromDashboardMessage>();
const app = document.getElementById('app') as HTMLElement;

function element<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, children: (Node | string)[] = []): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function formatTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function renderRuns(message: DashboardRunsMessage): void {
  const refresh = element('vscode-button', { id: 'refresh', title: 'List the runs again' }, ['Refresh']);
  refresh.setAttribute('secondary', '');
  refresh.addEventListener('click', () => host.post({ type: 'dashboard/refresh' }));
  const toolbar = element('div', { className: 'toolbar' }, [element('h1', {}, ['Runs']), refresh]);

  const body: Node[] = [toolbar, element('p', { className: 'muted', id: 'runs-folder' }, [message.runsFolder || 'No folder is open.'])];
  if (message.runs.length === 0) {
    body.push(element('p', { id: 'no-runs' }, ['No runs found. A run appears here when a trainer writes ', element('code', {}, ['.rlhf/runs/<run-id>/run.json']), '.']));
  } else {
    const rows = message.runs.map((run) => {
      const row = element('tr', {}, [
        element('td', { className: 'run-name' }, [run.name]),
        element('td', {}, [element('span', { className: `status status-${run.status}` }, [run.status])]),
        element('td', { className: 'run-started' }, [element('time', { dateTime: run.startedAt }, [formatTime(run.startedAt)])]),
        element('td', { className: 'muted' }, [run.id]),
      ]);
      row.dataset.runId = run.id;
      return row;
    });
    const header = element('tr', {}, ['Name', 'Status', 'Started', 'Run directory'].map((title) => element('th', { scope: 'col' }, [title])));
    body.push(element('table', { id: 'runs', className: 'data' }, [element('caption', { className: 'muted' }, [`${message.runs.length} run${message.runs.length === 1 ? '' : 's'}`]), element('thead', {}, [header]), element('tbody', {}, rows)]));
  }
  if (message.problems.length > 0) {
    body.push(
      element('h2', {}, ['Unreadable runs']),
      element('ul', { id: 'problems' }, message.problems.map((problem) => element('li', { className: 'problem' }, [element('code', {}, [problem.file]), `: ${problem.message}`]))),
    );
  }
  app.replaceChildren(...body);
  app.setAttribute('aria-busy', 'false');
}

host.listen((message) => {
  switch (message.type) {
    case 'dashboard/runs':
      renderRuns(message);
      break;
    default:
      assertNever(message.type, 'dashboard webview');
  }
});
