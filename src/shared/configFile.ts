/**
 * Reads a `*.rlhf.json` file: parses it (comments and trailing commas allowed, as VS Code's JSON
 * editor allows them), validates it against the run-config schema, adds the semantic checks a schema
 * cannot express, and places every problem on a line and column so both the CLI and the editor can
 * point at it.
 */
import { findNodeAtLocation, parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
import { formatPath, validate, type ConfigProblem } from './configSchema';
import { runConfigSchema, type RunConfig } from './runConfig';

export interface LocatedProblem extends ConfigProblem {
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

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

function locate(text: string, tree: Node | undefined, problem: ConfigProblem): LocatedProblem {
  let node: Node | undefined;
  // The deepest node that exists along the path: a missing key is reported on its parent object.
  for (let depth = problem.path.length; depth >= 0 && !node; depth--) node = tree ? findNodeAtLocation(tree, problem.path.slice(0, depth) as (string | number)[]) : undefined;
  // An unknown key is underlined at the key, not its value.
  const target = node?.parent?.type === 'property' && node.parent.children?.[1] === node && /unknown setting/.test(problem.message) ? node.parent.children[0] : node;
  const offset = target?.offset ?? 0;
  return { ...problem, offset, length: target?.length ?? 0, ...lineAndColumn(text, offset) };
}

/** Problems a schema cannot express; paths as in the schema's problems. */
export function semanticProblems(config: RunConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (config.model.n_embd % config.model.n_head !== 0) {
    problems.push({ path: ['model', 'n_head'], message: `must divide n_embd (${config.model.n_embd}); try ${[1, 2, 4, 8, 16].filter((h) => config.model.n_embd % h === 0).pop()}` });
  }
  config.stages.forEach((stage, index) => {
    if (stage.type === 'sft') {
      if (stage.warmup_steps >= stage.max_steps) problems.push({ path: ['stages', index, 'warmup_steps'], message: `(${stage.warmup_steps}) must be less than max_steps (${stage.max_steps})` });
    }
  });
  const names = config.stages.map((stage) => stage.name ?? stage.type);
  names.forEach((name, index) => {
    if (names.indexOf(name) !== index) problems.push({ path: ['stages', index, 'name'], message: `two stages are called "${name}"; give one a "name"` });
  });
  return problems;
}

export function readConfigText(text: string): ConfigRead {
  const parseErrors: ParseError[] = [];
  const tree = parseTree(text, parseErrors, { allowTrailingComma: true, disallowComments: false });
  if (parseErrors.length > 0 || !tree) {
    return {
      config: undefined,
      problems: parseErrors.map((error) => ({ path: [], message: `JSON syntax: ${printParseErrorCode(error.error)}`, offset: error.offset, length: error.length, ...lineAndColumn(text, error.offset) })),
    };
  }
  const { value: checked, problems } = validate(runConfigSchema, nodeValue(tree));
  const value = checked as RunConfig | undefined;
  const all = value ? semanticProblems(value) : problems;
  const located = all.map((problem) => locate(text, tree, problem)).sort((a, b) => a.offset - b.offset);
  return { config: all.length === 0 ? value : undefined, problems: located };
}

function nodeValue(node: Node): unknown {
  switch (node.type) {
    case 'object':
      return Object.fromEntries((node.children ?? []).map((property) => [property.children?.[0].value as string, property.children?.[1] ? nodeValue(property.children[1]) : undefined]));
    case 'array':
      return (node.children ?? []).map(nodeValue);
    default:
      return node.value;
  }
}

/** `file:line:column: field: message`, the form editors and terminals link. */
export function formatConfigProblem(file: string, problem: LocatedProblem): string {
  return `${file}:${problem.line}:${problem.column}: ${problem.path.length > 0 ? `${formatPath(problem.path)} ` : ''}${problem.message}`;
}
