/**
 * The cluster side of the Runs view: the workspace's submissions, their jobs' Slurm states and their run folders.
 * It asks the controller (one `scontrol show job -o` for all jobs) every few seconds while a job may still change,
 * and not at all once every job has finished.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { diedBeforeTrainerMessage, needsPolling, type ClusterElement } from './clusterElements';
import { listSubmissionElements } from './clusterListing';
import { scontrolShowJobs, SlurmCommandError } from './slurmCommands';
import { parseScontrolJobs, type SlurmJobState } from './slurmJobState';
import { jobsFolderOf, readSubmissions, type Submission, type SubmissionProblem } from './submissions';

/** How often the controller is asked while a job is pending or running. */
export const pollIntervalMs = 5000;

/** Opens a job's output file (registered in clusterCommands.ts; here, since that module imports this one). */
export const openJobOutputCommand = 'rlhf.openJobOutput';

export interface SubmissionListing {
  readonly submission: Submission;
  readonly elements: readonly ClusterElement[];
}

export interface ClusterListing {
  readonly submissions: readonly SubmissionListing[];
  readonly problems: readonly SubmissionProblem[];
  /** Why the states are unknown (no `scontrol`, no controller), when they are. */
  readonly slurmProblem?: string;
}

export class ClusterRuns implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];
  private timer: NodeJS.Timeout | undefined;
  private jobs: SlurmJobState[] | undefined;
  private slurmProblem: string | undefined;
  private slurmMissing = false;
  private latest: ClusterListing = { submissions: [], problems: [] };
  private disposed = false;
  /** The elements (`<submission folder>:<index>`) whose death before the trainer started was already announced. */
  private readonly announcedDeaths = new Set<string>();

  constructor(private readonly log: vscode.LogOutputChannel) {
    const watcher = vscode.workspace.createFileSystemWatcher('**/.rlhf/jobs/*/submission.json');
    this.disposables.push(
      watcher,
      watcher.onDidCreate(() => this.pollNow()),
      watcher.onDidChange(() => this.pollNow()),
      watcher.onDidDelete(() => this.pollNow()),
    );
    this.pollNow();
  }

  /** The last listing (the Runs view reads it; tests too). */
  get listing(): ClusterListing {
    return this.latest;
  }

  /** The workspace folders' submissions (`.rlhf/jobs` of each). */
  private async readAll(): Promise<{ submissions: Submission[]; problems: SubmissionProblem[] }> {
    const submissions: Submission[] = [];
    const problems: SubmissionProblem[] = [];
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      if (folder.uri.scheme !== 'file') continue;
      const found = await readSubmissions(jobsFolderOf(folder.uri.fsPath));
      submissions.push(...found.submissions);
      problems.push(...found.problems);
    }
    return { submissions, problems };
  }

  /** Reads the submissions and asks the controller now (after a submit, a cancel, a refresh). */
  pollNow(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    void this.poll();
  }

  private polling: Promise<void> | undefined;

  /** One round: submissions, run folders, the controller's states; the next round only while something may change. */
  private async poll(): Promise<void> {
    if (this.polling) return this.polling.then(() => this.poll());
    this.polling = this.pollOnce().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const { submissions, problems } = await this.readAll();
    if (submissions.length > 0) await this.askController();
    const listed = await Promise.all(
      submissions.map(async (submission): Promise<SubmissionListing> => ({
        submission,
        elements: await listSubmissionElements(submission, this.jobs, this.slurmProblem),
      })),
    );
    for (const item of listed) for (const element of item.elements) this.announceDeath(element);
    const before = JSON.stringify(this.latest);
    this.latest = { submissions: listed, problems, slurmProblem: this.slurmProblem };
    if (JSON.stringify(this.latest) !== before) this.changed.fire();
    const keepAsking = !this.slurmMissing && listed.some((item) => needsPolling(item.elements));
    if (keepAsking && !this.disposed) this.timer = setTimeout(() => void this.poll(), pollIntervalMs);
  }

  private async askController(): Promise<void> {
    try {
      this.jobs = parseScontrolJobs(await scontrolShowJobs());
      this.slurmProblem = undefined;
      this.slurmMissing = false;
    } catch (error) {
      const message = (error as Error).message;
      if (message !== this.slurmProblem) this.log.warn(`Slurm job states: ${message}`);
      this.jobs = undefined;
      this.slurmProblem = message;
      // A missing scontrol stays missing: stop asking until a refresh; a busy controller is asked again.
      this.slurmMissing = error instanceof SlurmCommandError && error.code === 'ENOENT';
    }
  }

  /**
   * A warning, once per job, for a job that died before its trainer started (nothing else would tell: no run, no
   * dashboard). Only while the controller still knows the job (MinJobAge after it ended), so that opening a
   * workspace does not announce every old failure again.
   */
  private announceDeath(element: ClusterElement): void {
    if (!element.diedBeforeTrainer || !element.job || this.disposed) return;
    const key = `${element.submission.folder}:${element.arrayIndex ?? ''}`;
    if (this.announcedDeaths.has(key)) return;
    this.announcedDeaths.add(key);
    const message = diedBeforeTrainerMessage(element);
    this.log.warn(message);
    void vscode.window.showWarningMessage(message, 'Open Output').then((choice) => {
      if (choice === 'Open Output') void vscode.commands.executeCommand(openJobOutputCommand, element);
    });
  }

  /** The element whose run folder is `runDir`, if a submission's job wrote it. */
  elementOfRun(runDir: string): ClusterElement | undefined {
    const wanted = path.resolve(runDir);
    for (const item of this.latest.submissions)
      for (const element of item.elements)
        if (element.run && path.resolve(element.run.runDir) === wanted) return element;
    return undefined;
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
    for (const disposable of this.disposables.splice(0)) disposable.dispose();
  }
}
