/**
 * Reads a `*.rlhf.json` file: parses it (comments and trailing commas allowed, as VS Code's JSON
 * editor allows them), validates it against the run-config schema, adds the semantic checks a schema
 * cannot express, and places every problem on a line and column so both the CLI and the editor can
 * point at it.
 */
import { readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import {
  findNodeAtLocation,
  getNodePath,
  parseTree,
  printParseErrorCode,
  type Node,
  type ParseError,
} from 'jsonc-parser';
import {
  semanticProblems,
  type CheckEnvironment,
  type ConfigFix,
  type PathKind,
  type ProblemSeverity,
} from './configChecks';
import { formatPath, validate, type ConfigProblem } from './configSchema';
import { runConfigSchema, type RunConfig } from './runConfig';
import { lineAndColumn } from './textPosition';
import { quote } from './userError';

export type { CheckEnvironment, PathKind } from './configChecks';

/**
 * The file checks of a config on disk (datasets, preference files, checkpoints it names must exist,
 * relative to its folder): the editor's diagnostics, "Start Run" and the CLI all pass this.
 */
export function configFileChecks(configFile: string): CheckEnvironment {
  return { configDir: path.dirname(path.resolve(configFile)), kind: pathKind, readText: readTextFile };
}

/** A small file's text (a model folder's config.json, tokenizer_config.json), undefined when it cannot be read. */
export function readTextFile(absolutePath: string): string | undefined {
  try {
    return readFileSync(absolutePath, 'utf8');
  } catch {
    return undefined;
  }
}

/** What is at `absolutePath`, following symbolic links; anything that cannot be looked at counts as missing. */
export function pathKind(absolutePath: string): PathKind {
  try {
    const stats = statSync(absolutePath, { throwIfNoEntry: false });
    return !stats ? 'missing' : stats.isFile() ? 'file' : stats.isDirectory() ? 'folder' : 'other';
  } catch {
    return 'missing'; // ENOTDIR (a file used as a folder), EACCES on a parent folder, a name too long
  }
}

/** Deepest nesting of objects and lists a config may have; no real config comes near it. */
export const maxConfigNesting = 64;

/**
 * Where `text` nests objects and lists deeper than `maxConfigNesting`, skipping strings and comments,
 * or -1. Checked before parsing: the parser and the schema walk recurse once per level, and 200k
 * levels overflow the stack.
 */
export function tooDeepOffset(text: string): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      for (i++; i < text.length && text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92 /* \ */) i++;
    } else if (c === 47 /* / */ && text.charCodeAt(i + 1) === 47) {
      while (i < text.length && text.charCodeAt(i) !== 10) i++;
    } else if (c === 47 && text.charCodeAt(i + 1) === 42 /* * */) {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 1;
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > maxConfigNesting) return i;
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      depth = Math.max(0, depth - 1);
    }
  }
  return -1;
}

export interface LocatedProblem extends ConfigProblem {
  /** `schema`: what the contributed JSON Schema also reports; `semantic`: what only these checks see. */
  readonly source: 'syntax' | 'schema' | 'semantic';
  /** Errors stop a run from starting; warnings do not. */
  readonly severity: ProblemSeverity;
  readonly fix?: ConfigFix;
  /** 1-based. */
  readonly line: number;
  readonly column: number;
  /** Character offsets of the offending value (or key) in the text. */
  readonly offset: number;
  readonly length: number;
}

export interface ConfigRead {
  readonly config: RunConfig | undefined;
  readonly problems: LocatedProblem[];
}

function locate(
  text: string,
  tree: Node | undefined,
  problem: ConfigProblem & Pick<LocatedProblem, 'source' | 'severity' | 'fix'>,
): LocatedProblem {
  let node: Node | undefined;
  // The deepest node that exists along the path: a missing key is reported on its parent object.
  for (let depth = problem.path.length; depth >= 0 && !node; depth--)
    node = tree ? findNodeAtLocation(tree, problem.path.slice(0, depth) as (string | number)[]) : undefined;
  // An unknown key is underlined at the key, not its value.
  const target =
    node?.parent?.type === 'property' && node.parent.children?.[1] === node && /unknown setting/.test(problem.message)
      ? node.parent.children[0]
      : node;
  const offset = target?.offset ?? 0;
  return { ...problem, offset, length: target?.length ?? 0, ...lineAndColumn(text, offset) };
}

/**
 * Parses and checks a config's text: syntax, then the schema, then (once the schema holds) the
 * semantic checks. With `environment`, files the config names must exist. `config` is set when no
 * problem is an error. The CLI, the editor's diagnostics and "Start Run" all call this.
 */
export function readConfigText(text: string, environment?: CheckEnvironment): ConfigRead {
  const deep = tooDeepOffset(text);
  if (deep >= 0) {
    const message = `nests objects and lists more than ${maxConfigNesting} levels deep; a run config needs 4`;
    return {
      config: undefined,
      problems: [
        {
          path: [],
          message,
          source: 'syntax',
          severity: 'error',
          offset: deep,
          length: 1,
          ...lineAndColumn(text, deep),
        },
      ],
    };
  }
  const parseErrors: ParseError[] = [];
  const tree = parseTree(text, parseErrors, { allowTrailingComma: true, disallowComments: false });
  if (parseErrors.length > 0 || !tree) {
    return {
      config: undefined,
      problems: parseErrors.map((error) => ({
        path: [],
        message: `JSON syntax: ${printParseErrorCode(error.error)}`,
        source: 'syntax',
        severity: 'error',
        offset: error.offset,
        length: error.length,
        ...lineAndColumn(text, error.offset),
      })),
    };
  }
  const raw = nodeValue(tree);
  const { value: checked, problems } = validate(runConfigSchema, raw);
  const value = checked as RunConfig | undefined;
  const all = value
    ? semanticProblems(value, raw, environment).map((problem) => ({ ...problem, source: 'semantic' as const }))
    : problems.map((problem) => ({ ...problem, source: 'schema' as const, severity: 'error' as const }));
  const located = [...duplicateKeys(text, tree), ...all.map((problem) => locate(text, tree, problem))].sort(
    (a, b) => a.offset - b.offset,
  );
  return { config: located.some((problem) => problem.severity === 'error') ? undefined : value, problems: located };
}

/**
 * Keys written twice in one object, at any depth: JSON parsers keep the later value without a word,
 * so the setting the user reads first is not the one that runs. Reported on the second key. Source
 * `semantic`: the JSON Schema cannot say it, so the editor shows it among this extension's diagnostics.
 */
function duplicateKeys(text: string, tree: Node): LocatedProblem[] {
  const problems: LocatedProblem[] = [];
  // Recursion is bounded: tooDeepOffset has refused anything nested deeper than maxConfigNesting.
  const visit = (node: Node) => {
    if (node.type === 'object') {
      const first = new Map<string, Node>();
      for (const property of node.children ?? []) {
        const key = property.children?.[0];
        if (!key || typeof key.value !== 'string') continue;
        const earlier = first.get(key.value);
        if (!earlier) first.set(key.value, key);
        else {
          const message =
            `duplicate key ${quote(key.value)} (first on line ${lineAndColumn(text, earlier.offset).line}): the ` +
            `later value would silently win — remove one`;
          problems.push({
            path: getNodePath(node),
            message,
            source: 'semantic',
            severity: 'error',
            offset: key.offset,
            length: key.length,
            ...lineAndColumn(text, key.offset),
          });
        }
      }
    }
    for (const child of node.children ?? []) visit(child);
  };
  visit(tree);
  return problems;
}

/**
 * Line and column of the value at `at` (or of the deepest part of it that exists), for problems found after reading.
 */
export function locatePath(text: string, at: readonly (string | number)[]): { line: number; column: number } {
  const tree = parseTree(text, [], { allowTrailingComma: true, disallowComments: false });
  let node: Node | undefined;
  for (let depth = at.length; depth >= 0 && !node; depth--)
    node = tree ? findNodeAtLocation(tree, at.slice(0, depth) as (string | number)[]) : undefined;
  return lineAndColumn(text, node?.offset ?? 0);
}

function nodeValue(node: Node): unknown {
  switch (node.type) {
    case 'object':
      return Object.fromEntries(
        (node.children ?? []).map((property) => [
          property.children?.[0].value as string,
          property.children?.[1] ? nodeValue(property.children[1]) : undefined,
        ]),
      );
    case 'array':
      return (node.children ?? []).map(nodeValue);
    default:
      return node.value;
  }
}

/** `file:line:column: field: message`, the form editors and terminals link. */
export function formatConfigProblem(file: string, problem: LocatedProblem): string {
  const severity = problem.severity === 'warning' ? 'warning: ' : '';
  const field = problem.path.length > 0 ? `${formatPath(problem.path)} ` : '';
  return `${file}:${problem.line}:${problem.column}: ${severity}${field}${problem.message}`;
}
