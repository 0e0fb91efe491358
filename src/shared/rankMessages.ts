/**
 * Messages between the Rank view (webview view `rlhf.rank`) and the extension host, scoped
 * `rank/...`, with the validator the host runs on everything the view posts. Re-exported by
 * protocol.ts.
 */
import { isRecord } from './isRecord';
import type { RankSet } from './rankSet';
import type { WebviewReadyMessage } from './webviewMessages';

/**
 * The set on screen: a RankSet (K completions of a prompt, shown in `shownOrder`) with its source
 * reduced to the line the view shows.
 */
export type RankSetView = Omit<RankSet, 'source'> & { readonly sourceLabel: string };

/** Everything the Rank view shows; sent on every change (the view keeps no state of its own). */
export interface RankStateMessage {
  readonly type: 'rank/state';
  /** The dataset's name and file (`.rlhf/preferences/<dataset>.jsonl`); empty before a source is chosen. */
  readonly dataset: string;
  readonly file: string;
  /** Live judgments in the file (retracted ones not counted). */
  readonly judgments: number;
  readonly set?: RankSetView;
  /** One line about what is happening ("Sampling 4 completions…", "All sets ranked."). */
  readonly status: string;
  readonly busy: boolean;
  readonly canUndo: boolean;
  /** Label-quality warnings, e.g. a preference cycle of this annotator. */
  readonly warnings: readonly string[];
}

/** A judgment reached the disk (appended and fsynced). */
export interface RankSavedMessage {
  readonly type: 'rank/saved';
  readonly setId: string;
  readonly judgmentId: string;
  readonly judgments: number;
}

export type ToRankMessage = RankStateMessage | RankSavedMessage;

/** The user ranked the set: groups of completion indices (into `completions`), best first. */
export interface RankSubmitMessage {
  readonly type: 'rank/submit';
  readonly setId: string;
  readonly ranking: readonly (readonly number[])[];
  readonly note?: string;
  /** 0 to 1. */
  readonly confidence?: number;
}

export interface RankSkipMessage {
  readonly type: 'rank/skip';
  readonly setId: string;
}

/** Withdraw the last judgment (a retraction line is appended) and show its set again. */
export interface RankUndoMessage {
  readonly type: 'rank/undo';
}

/** Open the source picker ("RLHF: Rank Completions"). */
export interface RankChooseSourceMessage {
  readonly type: 'rank/chooseSource';
}

export type FromRankMessage =
  WebviewReadyMessage | RankSubmitMessage | RankSkipMessage | RankUndoMessage | RankChooseSourceMessage;

/** Validates a message from the Rank view; a ranking must name each index at most once. */
export function parseRankMessage(value: unknown): FromRankMessage | undefined {
  if (!isRecord(value) || typeof value.type !== 'string') return undefined;
  const type = value.type as FromRankMessage['type'];
  const keys = Object.keys(value);
  const only = (...allowed: string[]) => keys.every((key) => key === 'type' || allowed.includes(key));
  switch (type) {
    case 'webview/ready':
    case 'rank/undo':
    case 'rank/chooseSource':
      return keys.length === 1 ? ({ type } as FromRankMessage) : undefined;
    case 'rank/skip':
      return only('setId') && typeof value.setId === 'string' ? { type, setId: value.setId } : undefined;
    case 'rank/submit': {
      if (
        !only('setId', 'ranking', 'note', 'confidence') ||
        typeof value.setId !== 'string' ||
        !Array.isArray(value.ranking)
      )
        return undefined;
      const ranking = value.ranking as unknown[];
      const indices = ranking.flatMap((group) => (Array.isArray(group) ? group : [NaN]));
      if (ranking.length === 0 || ranking.some((group) => !Array.isArray(group) || group.length === 0))
        return undefined;
      if (
        !indices.every((index) => Number.isInteger(index) && index >= 0 && index < 8) ||
        new Set(indices).size !== indices.length
      )
        return undefined;
      if (value.note !== undefined && (typeof value.note !== 'string' || value.note.length > 10_000)) return undefined;
      if (
        value.confidence !== undefined &&
        (typeof value.confidence !== 'number' || !(value.confidence >= 0 && value.confidence <= 1))
      )
        return undefined;
      return {
        type,
        setId: value.setId,
        ranking: ranking as number[][],
        note: value.note as string | undefined,
        confidence: value.confidence as number | undefined,
      };
    }
    default:
      return undefined;
  }
}
