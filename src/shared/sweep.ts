/**
 * Sweeps: a config's `"sweep"` block, `{"stages.<stage name>.<field>": [v1, v2, …]}`, runs the config
 * once per element — one value of each setting, every combination, the first setting varying slowest.
 * Under Slurm the elements are one job array (element i is array task i). An element's config is the
 * file's with those settings written in and its name suffixed (`demo-init_kl_coef-0.05`), so its runs
 * have ids of their own and a resumed run reads back exactly the config it ran.
 */
import type { Path } from './configProblems';
import { formatPath, type ConfigProblem } from './configSchema';
import { isRecord } from './isRecord';
import { maxNameLength, stageSchema, type RunConfig, type SweepConfig } from './runConfig';
import { quote } from './userError';

export type SweepValue = number | string | boolean;

export interface SweepElement {
  /** Its place in the sweep: the job array's task id. */
  readonly index: number;
  /** Setting path → the value this element runs with. */
  readonly settings: Readonly<Record<string, SweepValue>>;
}

/** Slurm's default MaxArraySize is 1001 (task ids 0 to 1000); a sweep larger than that is a mistake. */
export const maxSweepElements = 1000;

/** The elements of a sweep, in job-array order; none without a sweep. */
export function sweepElements(sweep: SweepConfig | undefined): SweepElement[] {
  const entries = Object.entries(sweep ?? {});
  if (entries.length === 0) return [];
  let combinations: Record<string, SweepValue>[] = [{}];
  for (const [key, values] of entries)
    combinations = combinations.flatMap((partial) => values.map((value) => ({ ...partial, [key]: value })));
  return combinations.map((settings, index) => ({ index, settings }));
}

/** How many runs a sweep makes (before building them: a product can be huge). */
export function sweepSize(sweep: SweepConfig | undefined): number {
  const entries = Object.values(sweep ?? {});
  return entries.length === 0 ? 0 : entries.reduce((product, values) => product * values.length, 1);
}

/** The stage a setting path names, and its field; a problem (words) when it names none. */
export function resolveSweepPath(
  stageNames: readonly string[],
  settingPath: string,
): { stageIndex: number; field: string } | string {
  const prefix = 'stages.';
  if (!settingPath.startsWith(prefix)) return `${quote(settingPath)} must start with "stages."`;
  const rest = settingPath.slice(prefix.length);
  // Stage names may hold dots: the longest name followed by a dot wins.
  const candidates = stageNames
    .map((name, stageIndex) => ({ name, stageIndex }))
    .filter(({ name }) => rest.startsWith(`${name}.`))
    .sort((a, b) => b.name.length - a.name.length);
  if (candidates.length === 0)
    return `${quote(settingPath)} names no stage of this config (its stages: ${stageNames.map(quote).join(', ')})`;
  const { name, stageIndex } = candidates[0];
  return { stageIndex, field: rest.slice(name.length + 1) };
}

/** The problem of a setting path for this config (an unknown stage or field), or undefined. */
export function sweepPathProblem(config: RunConfig, settingPath: string): string | undefined {
  const resolved = resolveSweepPath(
    config.stages.map((stage) => stage.name ?? stage.type),
    settingPath,
  );
  if (typeof resolved === 'string') return resolved;
  const stage = config.stages[resolved.stageIndex];
  const settings = Object.keys(stageSchema.variants[stage.type].properties).filter((key) => key !== 'name');
  if (!settings.includes(resolved.field))
    return `${quote(resolved.field)} is not a setting of a ${stage.type} stage (its settings: ${settings.join(', ')})`;
  return undefined;
}

/** A run name's suffix for an element: `init_kl_coef-0.05`, characters a name may not hold made `_`. */
function elementSuffix(element: SweepElement): string {
  return Object.entries(element.settings)
    .map(([key, value]) => `${key.slice(key.lastIndexOf('.') + 1)}-${String(value)}`)
    .join('-')
    .replace(/[^A-Za-z0-9._-]/g, '_');
}

/** The element's run name: the config's with the element's settings, or its index when that is too long. */
export function sweepElementName(configName: string, element: SweepElement): string {
  const named = `${configName}-${elementSuffix(element)}`;
  return named.length <= maxNameLength ? named : `${configName.slice(0, maxNameLength - 12)}-sweep${element.index}`;
}

/**
 * The raw config (as parsed from the file) of one element: its settings written into their stages,
 * its name, and no sweep (an element is one run). `raw` is not changed.
 */
export function applySweepElement(raw: unknown, element: SweepElement): Record<string, unknown> {
  if (!isRecord(raw) || !Array.isArray(raw.stages)) throw new Error('a sweep applies to a run config object');
  const copy = structuredClone(raw) as Record<string, unknown> & { stages: unknown[] };
  const stageNames = copy.stages.map((stage) => (isRecord(stage) ? String(stage.name ?? stage.type ?? '') : ''));
  for (const [settingPath, value] of Object.entries(element.settings)) {
    const resolved = resolveSweepPath(stageNames, settingPath);
    if (typeof resolved === 'string') throw new Error(`sweep: ${resolved}`);
    (copy.stages[resolved.stageIndex] as Record<string, unknown>)[resolved.field] = value;
  }
  delete copy.sweep;
  copy.name = sweepElementName(String(copy.name), element);
  return copy;
}

/**
 * Problems of a config's sweep, at paths of the document: setting paths naming no stage or field,
 * too many elements, and values that make a config the checks refuse (`problemsOf` checks an
 * element's raw config; problems the config has without the sweep are not repeated).
 */
export function sweepProblems(
  config: RunConfig,
  raw: unknown,
  problemsOf: (elementRaw: unknown) => readonly ConfigProblem[],
  baseProblems: readonly ConfigProblem[],
): ConfigProblem[] {
  const sweep = config.sweep;
  if (!sweep) return [];
  const problems: ConfigProblem[] = [];
  let pathsOk = true;
  for (const key of Object.keys(sweep)) {
    const problem = sweepPathProblem(config, key);
    if (problem) {
      problems.push({ path: ['sweep', key], message: problem });
      pathsOk = false;
    }
  }
  const size = sweepSize(sweep);
  if (size > maxSweepElements) {
    problems.push({ path: ['sweep'], message: `makes ${size} runs; at most ${maxSweepElements} (a Slurm job array)` });
    return problems;
  }
  if (!pathsOk) return problems;
  const known = new Set(baseProblems.map((problem) => `${problem.path.join('\u0000')}\u0001${problem.message}`));
  for (const element of sweepElements(sweep)) {
    const found = problemsOf(applySweepElement(raw, element)).filter(
      (problem) => !known.has(`${problem.path.join('\u0000')}\u0001${problem.message}`),
    );
    for (const problem of found) {
      const at: Path = ['sweep', ...settingOfProblem(element, problem.path)];
      const settings = Object.entries(element.settings)
        .map(([name, setting]) => `${name} = ${JSON.stringify(setting)}`)
        .join(', ');
      problems.push({
        path: at,
        message: `sweep element ${element.index} (${settings}): ${formatPath(problem.path)} ${problem.message}`,
      });
    }
  }
  return problems;
}

/** Where to underline an element's problem: the value of the setting the problem's path names, else the first. */
function settingOfProblem(element: SweepElement, problemPath: readonly (string | number)[]): Path {
  const field = problemPath.at(-1);
  const keys = Object.keys(element.settings);
  return [keys.find((name) => name.endsWith(`.${String(field)}`)) ?? keys[0]];
}
