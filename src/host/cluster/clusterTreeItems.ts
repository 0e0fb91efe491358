/**
 * The Runs view's items for cluster jobs: a sweep's submission groups its elements; a single job is one item. Each
 * job shows its Slurm state ("pending (Resources)", "running on node1", "cancelled"), and its run's step once the
 * trainer writes one. Context values (menus key on them): `slurmSubmission.<active|finished>` and
 * `slurmJob.<phase>[.run]` (`.run` once a run folder exists).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { elementJobSpec, reasonLine, shownTailLines, type ClusterElement } from './clusterElements';
import type { SubmissionListing } from './clusterRuns';
import { isFinished, type JobPhase } from './slurmJobState';

const phaseIcons: Record<JobPhase, vscode.ThemeIcon> = {
  pending: new vscode.ThemeIcon('clock', new vscode.ThemeColor('charts.yellow')),
  running: new vscode.ThemeIcon('sync~spin', new vscode.ThemeColor('charts.blue')),
  completed: new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')),
  failed: new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed')),
  cancelled: new vscode.ThemeIcon('circle-slash', new vscode.ThemeColor('charts.yellow')),
  timeout: new vscode.ThemeIcon('watch', new vscode.ThemeColor('testing.iconFailed')),
  preempted: new vscode.ThemeIcon('debug-pause', new vscode.ThemeColor('charts.yellow')),
  requeued: new vscode.ThemeIcon('history', new vscode.ThemeColor('charts.yellow')),
};

/** The Slurm job spec of an element: `123`, or `123_4` for an array element. */
export function jobSpecOf(element: ClusterElement): string {
  return elementJobSpec(element.submission, element.arrayIndex);
}

/** "slurm 123 · running on node1", "slurm 123_1 · pending (Priority)". */
export function elementDescription(element: ClusterElement): string {
  const step = element.run && element.phase === 'running' && element.run.run.status === 'running' ? ' · training' : '';
  return `slurm ${jobSpecOf(element)} · ${element.description}${step}`;
}

export function submissionTreeItem(listing: SubmissionListing): vscode.TreeItem {
  const { submission, elements } = listing;
  const item = new vscode.TreeItem(
    `${path.basename(submission.config).replace(/\.rlhf\.json$/, '')} sweep`,
    vscode.TreeItemCollapsibleState.Expanded,
  );
  item.id = `slurm:${submission.folder}`;
  const counts = new Map<JobPhase, number>();
  for (const element of elements) counts.set(element.phase, (counts.get(element.phase) ?? 0) + 1);
  const countsText = [...counts].map(([phase, count]) => `${count} ${phase}`).join(', ');
  item.description = `slurm ${submission.jobId} · ${countsText}`;
  item.tooltip = new vscode.MarkdownString(
    [
      `**Sweep** of \`${vscode.workspace.asRelativePath(submission.config)}\` — job array ${submission.jobId}`,
      `Submitted ${submission.submittedAt ? new Date(submission.submittedAt).toLocaleString() : '(unknown)'}`,
      `Batch script: \`${vscode.workspace.asRelativePath(submission.script)}\``,
    ].join('\n\n'),
  );
  item.iconPath = new vscode.ThemeIcon('layers');
  const active = elements.some((element) => !isFinished(element.phase));
  item.contextValue = `slurmSubmission.${active ? 'active' : 'finished'}`;
  return item;
}

/** For a job that died before its trainer started: the line that says why and the output's last lines. */
function outputTailText(element: ClusterElement): string[] {
  const tail = element.outputTail;
  if (!tail) return [];
  if (!tail.exists) return [`Its output file does not exist: Slurm could not write it, or it was removed.`];
  if (tail.lines.length === 0) return ['Its output file is empty.'];
  const why = reasonLine(tail.lines);
  const last = tail.lines.slice(-shownTailLines).join('\n');
  return [why ? `Why: \`${why}\`` : '', `Its output ends with:\n\n\`\`\`\n${last}\n\`\`\``];
}

export function elementTreeItem(element: ClusterElement): vscode.TreeItem {
  const { submission, run } = element;
  const label =
    element.arrayIndex === undefined
      ? (run?.run.name ?? path.basename(submission.config).replace(/\.rlhf\.json$/, ''))
      : `[${element.arrayIndex}] ${element.settingsText || run?.run.name || 'element'}`;
  const item = new vscode.TreeItem(label);
  item.id = `slurm:${submission.folder}:${element.arrayIndex ?? ''}`;
  item.description = elementDescription(element);
  const job = element.job;
  item.tooltip = new vscode.MarkdownString(
    [
      `**${label}** — Slurm job ${jobSpecOf(element)}: ${element.description}`,
      job ? `State \`${job.state}\`${job.reason ? `, reason \`${job.reason}\`` : ''}` : '',
      job?.restarts ? `Requeued ${job.restarts} time(s)` : '',
      run ? `Run folder: \`${vscode.workspace.asRelativePath(run.runDir)}\` (${run.run.status})` : 'No run folder yet.',
      run?.run.error ? `Error: ${run.run.error}` : '',
      `Output: \`${vscode.workspace.asRelativePath(element.outputFile)}\``,
      ...outputTailText(element),
    ]
      .filter(Boolean)
      .join('\n\n'),
  );
  item.iconPath = phaseIcons[element.phase];
  item.contextValue = `slurmJob.${element.phase}${run ? '.run' : ''}`;
  item.command = run
    ? { command: 'rlhf.openDashboard', title: 'Open Dashboard', arguments: [run.runDir] }
    : { command: 'rlhf.openJobOutput', title: 'Open Job Output', arguments: [element] };
  return item;
}
