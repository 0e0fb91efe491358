/**
 * What `train --resume` needs of run.json beyond what every reader checks (runJsonProblems): the
 * stage to continue, and the stored config, checked again by the config file's own validator so a
 * planted run.json cannot do what a config file could not (a name that is a path, a stage that does
 * not exist, a step beyond the plan).
 */
import { readConfigText } from '../../shared/configFile';
import { formatPath } from '../../shared/configSchema';
import type { RunConfig } from '../../shared/runConfig';
import { isRecord } from '../../shared/isRecord';
import { FieldChecker, FileFormatError, objectProblems, runJsonProblems } from '../../shared/runFiles';
import { runIdProblem } from '../../shared/runIds';

const advice = 'this run cannot be resumed from it; start the run again from its config file, or restore run.json';

/** Throws a FileFormatError naming `file` and every wrong field; returns the record with the config as validated. */
export function checkResumableRunJson(
  value: unknown,
  file: string,
): Record<string, unknown> & { config: RunConfig; stage_index: number } {
  if (!isRecord(value)) throw new FileFormatError(file, objectProblems(value), advice);
  const problems = runJsonProblems(value);
  const fields = new FieldChecker(value);
  const id = fields.string('id', { nonEmpty: true });
  const idProblem = id === undefined ? undefined : runIdProblem(id);
  if (idProblem) fields.problems.push(`id: ${idProblem}`);
  fields.string('stage', { nonEmpty: true });
  const stageIndex = fields.wholeNumber('stage_index');
  const step = fields.wholeNumber('step', { optional: true });
  const maxSteps = fields.wholeNumber('max_steps', { optional: true });
  if (step !== undefined && maxSteps !== undefined && step > maxSteps)
    fields.problems.push(`step ${step} is beyond max_steps ${maxSteps}`);
  problems.push(...fields.problems.filter((problem) => !problems.includes(problem)));

  let config: RunConfig | undefined;
  if (value.config === undefined) {
    problems.push('config is missing');
  } else {
    const read = readConfigText(JSON.stringify(value.config));
    for (const problem of read.problems) {
      if (problem.severity === 'error')
        problems.push(`config${problem.path.length > 0 ? `.${formatPath(problem.path)}` : ''} ${problem.message}`);
    }
    config = read.config;
  }
  if (config && stageIndex !== undefined) {
    const stage = config.stages[stageIndex];
    if (stage === undefined)
      problems.push(
        `stage_index ${stageIndex} is out of range: config.stages has ${config.stages.length} stage` +
          `${config.stages.length === 1 ? '' : 's'} (0 to ${config.stages.length - 1})`,
      );
    else if (typeof value.stage === 'string' && value.stage !== (stage.name ?? stage.type))
      problems.push(
        `stage "${value.stage.slice(0, 200)}" is not config.stages[${stageIndex}], which is "` +
          `${stage.name ?? stage.type}"`,
      );
  }
  if (problems.length > 0 || !config) throw new FileFormatError(file, problems, advice);
  return { ...value, config, stage_index: stageIndex as number };
}
