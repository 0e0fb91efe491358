/**
 * Reading a run config for training: the editor's checks (syntax, schema, semantics, the files it
 * names, the sweep) and the memory guard, before any run folder exists; and one element of the
 * config's sweep (sweep.ts) as a config of its own.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseJsonc } from 'jsonc-parser';
import { configFileChecks, formatConfigProblem, locatePath, readConfigText } from '../shared/configFile';
import { formatPath } from '../shared/configSchema';
import { backendNames } from '../shared/backendNames';
import type { RunConfig } from '../shared/runConfig';
import { applySweepElement, sweepElements, type SweepElement } from '../shared/sweep';
import { UserError, UserErrors, userErrorFromFileSystem } from '../shared/userError';
import { chooseEngine } from './engineFactory';
import { assertStageFits, likelyBackend, memoryTarget } from './memoryGuard';
import type { LogLevel } from './stageContext';

/** A problem of the config (or of how stages refer to each other): a user error, printed without a stack. */
export class ConfigError extends UserError {}

/**
 * Reads and checks a config file with exactly the editor's checks (syntax, schema, semantics, the
 * files it names) and the memory guard, before any run folder exists. Errors throw one UserError
 * listing every problem as file:line:column; warnings go to `log`.
 */
export function loadRunConfig(configFile: string, log?: (level: LogLevel, message: string) => void): RunConfig {
  return readRunConfig(configFile, log).config;
}

/** loadRunConfig's work, and the text it read (a sweep element is made from it). */
function readRunConfig(
  configFile: string,
  log?: (level: LogLevel, message: string) => void,
  checkMemory = true,
): { config: RunConfig; text: string } {
  let text: string;
  try {
    text = readFileSync(configFile, 'utf8');
  } catch (error) {
    throw (
      userErrorFromFileSystem(error) ??
      new ConfigError(`cannot be read: ${(error as Error).message}`, { file: configFile, hint: 'check the path' })
    );
  }
  const { config, problems } = readConfigText(text, configFileChecks(configFile));
  const errors = problems.filter((problem) => problem.severity === 'error');
  if (!config) {
    const count = `${errors.length} problem${errors.length === 1 ? '' : 's'}`;
    throw new UserErrors(
      errors.map((problem) => formatConfigProblem(configFile, problem)),
      `the run config has ${count}`,
      { file: configFile, hint: 'fix them (the editor underlines each one) and run again' },
    );
  }
  for (const warning of problems.filter((problem) => problem.severity === 'warning'))
    log?.('warn', formatConfigProblem(configFile, warning));
  if (!checkMemory) return { config, text };
  // Each stage is checked again before it starts, against the backend actually chosen.
  const target = memoryTarget(chooseEngine(config.engine).name, likelyBackend(requestedBackend(config.backend)));
  const locate = (at: (string | number)[]) => ({ file: configFile, ...locatePath(text, at) });
  config.stages.forEach((_, index) =>
    assertStageFits(config, index, target, { configDir: path.dirname(path.resolve(configFile)), locate }),
  );
  return { config, text };
}

/**
 * The config of one element of the file's sweep (sweep.ts), checked as a config file would be (the
 * file itself has just passed, sweep included) and against the memory guard.
 */
export function loadSweepElement(
  configFile: string,
  sweepIndex: number,
  log?: (level: LogLevel, message: string) => void,
): { config: RunConfig; element: SweepElement } {
  const { config, text } = readRunConfig(configFile, log, false);
  const elements = sweepElements(config.sweep);
  const element = elements[sweepIndex];
  if (!element)
    throw new ConfigError(
      `--sweep-index ${sweepIndex}: ` +
        (elements.length === 0
          ? 'the config has no sweep'
          : `the sweep has ${elements.length} elements (0 to ${elements.length - 1})`),
      { file: configFile, hint: 'give the index of an element of the config\'s "sweep"' },
    );
  const elementText = JSON.stringify(applySweepElement(parseJsonc(text, [], { allowTrailingComma: true }), element));
  const read = readConfigText(elementText, configFileChecks(configFile));
  if (!read.config)
    throw new UserErrors(
      read.problems
        .filter((problem) => problem.severity === 'error')
        .map((problem) => `${formatPath(problem.path)} ${problem.message}`),
      `sweep element ${sweepIndex} makes a config the checks refuse`,
      { file: configFile, hint: "change the sweep's values" },
    );
  const target = memoryTarget(
    chooseEngine(read.config.engine).name,
    likelyBackend(requestedBackend(read.config.backend)),
  );
  read.config.stages.forEach((_, index) =>
    assertStageFits(read.config as RunConfig, index, target, { configDir: path.dirname(path.resolve(configFile)) }),
  );
  return { config: read.config, element };
}

/**
 * A config's "auto" follows RLHF_LENS_BACKEND when it names a backend: the editor passes its
 * `rlhf.defaultBackend` setting that way. A backend the config pins wins.
 */
export function requestedBackend(configured: RunConfig['backend']): RunConfig['backend'] {
  const fromEnvironment = process.env.RLHF_LENS_BACKEND;
  return configured === 'auto' && (backendNames as readonly string[]).includes(fromEnvironment ?? '')
    ? (fromEnvironment as RunConfig['backend'])
    : configured;
}
