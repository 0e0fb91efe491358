/**
 * One ranking session: a preference dataset, a source of sets, the set on screen, and the label-
 * quality checks. Submitting appends the judgment (fsynced) before the next set is shown; skipping
 * moves on without writing; undo appends a retraction of the file's last live judgment and shows its
 * set again. Free of `vscode`: the Rank view drives it and the unit tests drive it the same way.
 */
import { Listeners, type Listener } from './listeners';
import { newJudgmentId, type PreferenceStore } from './preferenceStore';
import type { RankSource } from './rankSources';
import type { RankSetView, RankStateMessage, RankSubmitMessage } from '../shared/protocol';
import type { Judgment } from '../shared/preferences';
import { findPreferenceCycle, identicalGroups, makeRankSet, setKey, type RankSet } from '../shared/rankSet';
import { Random } from '../core';

const preview = (text: string, length = 40) =>
  JSON.stringify(text.length > length ? `${text.slice(0, length)}…` : text);

export interface RankSessionOptions {
  readonly store: PreferenceStore;
  readonly annotator: string;
  /** Sets skipped earlier (persisted by the view), so a reloaded window does not show them again. */
  readonly skipped?: Iterable<string>;
  readonly onSkipped?: (keys: readonly string[]) => void;
  /** The judgment is on disk (fsynced): called before the next set is fetched, which may take a while. */
  readonly onSaved?: (judgment: Judgment, judgments: number) => void;
}

export class RankSession {
  private source: RankSource | undefined;
  private current: RankSet | undefined;
  /** Sets to show before asking the source again (an undone judgment's set). */
  private readonly returned: RankSet[] = [];
  private judgments = 0;
  private status = 'Choose a source of completions to rank.';
  private busy = false;
  private readonly warnings: string[] = [];
  private readonly skipped: Set<string>;
  private readonly changes = new Listeners<RankStateMessage>();
  private readonly random = new Random(Date.now() >>> 0);

  constructor(private readonly options: RankSessionOptions) {
    this.skipped = new Set(options.skipped ?? []);
  }

  get store(): PreferenceStore {
    return this.options.store;
  }

  /** Keys of sets already judged (live) or skipped: a list source passes over them. */
  async doneKeys(): Promise<Set<string>> {
    const read = await this.options.store.read();
    return new Set([
      ...read.judgments.map((judgment) => setKey(judgment.prompt, judgment.completions)),
      ...this.skipped,
    ]);
  }

  onDidChange(listener: Listener<RankStateMessage>): () => void {
    return this.changes.add(listener);
  }

  /** Reads the dataset's count and warnings; call once after construction. */
  async load(): Promise<void> {
    const read = await this.options.store.read();
    this.judgments = read.judgments.length;
    const prompts = new Set(
      read.judgments
        .filter((judgment) => judgment.annotator === this.options.annotator)
        .map((judgment) => judgment.prompt),
    );
    for (const prompt of prompts) this.checkCycle(read.judgments, prompt);
    this.emit();
  }

  async setSource(source: RankSource, problems: readonly string[] = []): Promise<void> {
    this.source?.dispose();
    this.source = source;
    this.current = undefined;
    this.returned.length = 0;
    for (const problem of problems.slice(0, 3)) this.warnings.push(problem);
    await this.advance();
  }

  state(): RankStateMessage {
    return {
      type: 'rank/state',
      dataset: this.options.store.dataset,
      file: this.options.store.file,
      judgments: this.judgments,
      set: this.current && toView(this.current),
      status: this.status,
      busy: this.busy,
      canUndo: this.judgments > 0,
      warnings: [...this.warnings],
    };
  }

  /** Appends and fsyncs the judgment, then shows the next set. Returns the judgment written. */
  async submit(message: RankSubmitMessage): Promise<Judgment | undefined> {
    const set = this.current;
    if (!set || set.id !== message.setId) return undefined; // a stale click on a set already gone
    const named = message.ranking.flat();
    if (named.length !== set.completions.length || named.some((index) => index >= set.completions.length)) {
      throw new Error(`The ranking must place each of the ${set.completions.length} completions exactly once.`);
    }
    const judgment: Judgment = {
      id: newJudgmentId(),
      prompt: set.prompt,
      completions: set.completions,
      ranking: message.ranking,
      annotator: this.options.annotator,
      time: new Date().toISOString(),
      // The judgment is exactly what the file holds: no keys with undefined values.
      source: JSON.parse(
        JSON.stringify({ kind: set.source.kind, run: set.source.run, step: set.source.step, model: set.source.model }),
      ) as Judgment['source'],
      ...(message.note ? { note: message.note } : {}),
      ...(message.confidence !== undefined ? { confidence: message.confidence } : {}),
      shown_order: set.shownOrder,
    };
    this.current = undefined;
    await this.options.store.append(judgment);
    this.judgments++;
    const read = await this.options.store.read();
    this.judgments = read.judgments.length;
    this.checkCycle(read.judgments, judgment.prompt);
    this.options.onSaved?.(judgment, this.judgments);
    await this.advance();
    return judgment;
  }

  async skip(setId: string): Promise<void> {
    if (!this.current || this.current.id !== setId) return;
    this.skipped.add(setKey(this.current.prompt, this.current.completions));
    this.options.onSkipped?.([...this.skipped]);
    this.current = undefined;
    await this.advance();
  }

  /** Retracts the file's last live judgment and shows its set again (in a fresh random order). */
  async undo(): Promise<Judgment | undefined> {
    const read = await this.options.store.read();
    const last = read.judgments.at(-1);
    if (!last) return undefined;
    await this.options.store.retract(last.id);
    this.judgments = read.judgments.length - 1;
    if (this.current) this.returned.unshift(this.current);
    const source = {
      kind: (last.source as { kind?: string } | undefined)?.kind ?? 'undo',
      run: last.source?.run,
      step: last.source?.step,
      model: last.source?.model,
      label: 'the judgment you undid',
    } as RankSet['source'];
    this.current = makeRankSet(`undo-${last.id}`, last.prompt, last.completions, source, this.random);
    this.status = 'Judgment withdrawn: rank this set again, or skip it.';
    this.warnings.splice(
      0,
      this.warnings.length,
      ...this.warnings.filter((warning) => !warning.includes(preview(last.prompt))),
    );
    this.emit();
    return last;
  }

  dispose(): void {
    this.source?.dispose();
    this.changes.clear();
  }

  private async advance(): Promise<void> {
    const returned = this.returned.shift();
    if (returned) {
      this.current = returned;
      this.status = '';
      this.emit();
      return;
    }
    if (!this.source) return this.emit();
    this.busy = true;
    this.status = this.source.remaining === undefined ? 'Sampling completions…' : 'Loading the next set…';
    this.emit();
    try {
      this.current = await this.source.next();
      this.status = this.current
        ? this.source.remaining !== undefined
          ? `${this.source.remaining} more after this one`
          : ''
        : 'All sets of this source are ranked or skipped.';
    } catch (error) {
      this.current = undefined;
      this.status = `Could not get the next set: ${(error as Error).message}`;
    } finally {
      this.busy = false;
    }
    this.emit();
  }

  private checkCycle(judgments: readonly Judgment[], prompt: string): void {
    const cycle = findPreferenceCycle(judgments, this.options.annotator, prompt);
    const prefix = `Your judgments of ${preview(prompt)} form a cycle`;
    const index = this.warnings.findIndex((warning) => warning.startsWith(prefix));
    if (index >= 0) this.warnings.splice(index, 1);
    if (cycle) this.warnings.push(`${prefix}: ${[...cycle, cycle[0]].map((text) => preview(text, 24)).join(' > ')}`);
  }

  private emit(): void {
    this.changes.fire(this.state());
  }
}

function toView(set: RankSet): RankSetView {
  return {
    id: set.id,
    prompt: set.prompt,
    completions: set.completions,
    shownOrder: set.shownOrder,
    identical: identicalGroups(set.completions),
    sourceLabel: set.source.label,
  };
}
