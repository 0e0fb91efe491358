/**
 * "Not logged" explanations: where a view of a run of another engine is empty (a colour-by field the trace does not
 * have, no rollouts, no metrics), the dashboard says which field the engine did not log and how to get it, from
 * the run header's `notLogged` list (the importers' data, src/shared/importers/*.ts).
 */
import type { DashboardRunInfo } from '../../src/shared/dashboardMessages';
import type { PackedField, PackedPpoTrace } from '../../src/shared/packedTrace';
import type { ColourBy } from './tokenView';

/** The run header's part the explanations need. */
export type NotLoggedSource = Pick<DashboardRunInfo, 'engine' | 'notLogged'>;

/** The packed field a colouring reads. */
export const fieldOfColour = (colourBy: ColourBy): PackedField => (colourBy === 'clip' ? 'clip_class' : colourBy);

/**
 * "kl: not logged by NeMo-RL — <how>" for a field the engine is known not to log; a plainer sentence for a field
 * missing from a trace of an engine that could have logged it; undefined when the run has no engine (a run of the
 * lens's own trainer, whose traces have every field).
 */
export function notLoggedText(run: NotLoggedSource | undefined, field: string): string | undefined {
  if (!run?.engine) return undefined;
  const entry = run.notLogged?.find((item) => item.field === field);
  if (entry) return `${field}: not logged by ${run.engine} — ${entry.how}`;
  return `${field}: not in this run's ${run.engine} files (the writer did not log it)`;
}

/** Whether the shown trace lacks the field a colouring reads (absent, not 0). */
export function isAbsent(trace: PackedPpoTrace | undefined, colourBy: ColourBy): boolean {
  return trace?.absent.includes(fieldOfColour(colourBy)) ?? false;
}
