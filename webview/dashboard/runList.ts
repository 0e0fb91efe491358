/**
 * The dashboard without a run: the workspace's runs, each with a button that opens its dashboard,
 * and the run files that could not be read.
 */
import type { DashboardRunsMessage } from '../../src/shared/protocol';
import { button, element } from './dom';

export interface RunListActions {
  /** List the runs again. */
  refresh(): void;
  openRun(runId: string): void;
}

function formatTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** The page's content: the folder, the runs' table (or that there are none), and the unreadable runs. */
export function runList(message: DashboardRunsMessage, actions: RunListActions): Node[] {
  const refresh = button('refresh', 'Refresh', 'List the runs again', () => actions.refresh());
  const body: Node[] = [
    element('div', { className: 'toolbar' }, [element('h1', {}, ['Runs']), refresh]),
    element('p', { className: 'muted', id: 'runs-folder' }, [message.runsFolder || 'No folder is open.']),
  ];
  if (message.runs.length === 0) {
    body.push(
      element('p', { id: 'no-runs' }, [
        'No runs found. A run appears here when a trainer writes ',
        element('code', {}, ['.rlhf/runs/<run-id>/run.json']),
        '.',
      ]),
    );
  } else {
    const rows = message.runs.map((item) => {
      const open = button(`open-${item.id}`, 'Open', `Open the dashboard of ${item.name}`, () =>
        actions.openRun(item.id),
      );
      const row = element('tr', {}, [
        element('td', { className: 'run-name' }, [item.name]),
        element('td', {}, [element('span', { className: `status status-${item.status}` }, [item.status])]),
        element('td', { className: 'run-started' }, [
          element('time', { dateTime: item.startedAt }, [formatTime(item.startedAt)]),
        ]),
        element('td', { className: 'muted' }, [item.id]),
        element('td', {}, [open]),
      ]);
      row.dataset.runId = item.id;
      return row;
    });
    const head = element(
      'tr',
      {},
      ['Name', 'Status', 'Started', 'Run directory', ''].map((title) => element('th', { scope: 'col' }, [title])),
    );
    body.push(
      element('table', { id: 'runs', className: 'data' }, [
        element('caption', { className: 'muted' }, [
          `${message.runs.length} run${message.runs.length === 1 ? '' : 's'}`,
        ]),
        element('thead', {}, [head]),
        element('tbody', {}, rows),
      ]),
    );
  }
  if (message.problems.length > 0) {
    body.push(
      element('h2', {}, ['Unreadable runs']),
      element(
        'ul',
        { id: 'problems' },
        message.problems.map((problem) =>
          element('li', { className: 'problem' }, [element('code', {}, [problem.file]), `: ${problem.message}`]),
        ),
      ),
    );
  }
  return body;
}
