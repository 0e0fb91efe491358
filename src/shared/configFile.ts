/**
 * Reads a `*.rlhf.json` file: parses it (comments and trailing commas allowed, as VS Code's JSON
 * editor allows them), validates it against the run-config schema, adds the semantic checks a schema
 * cannot express, and places every problem on a line and column so both the CLI and the editor can
 * point at it.
 */
import { findNodeAtLocation, parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
import { semanticProblems, type CheckEnvironment, type ConfigFix, type ProblemSeverity } from './configChecks';
import { formatPath, validate, type ConfigProblem } from './configSchema';
import { runConfigSchema, type RunConfig } from './runConfig';

export type { CheckEnvironment } from './configChecks';

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

function locate(text: string, tree: Node | undefined, problem: ConfigProblem & Pick<LocatedProblem, 'source' | 'severity' | 'fix'>): LocatedProblem {
  let node: Node | undefined;
  // The deepest node that exists along the path: a missing key is reported on its parent object.
  for (let depth = problem.path.length; depth >= 0 && !node; depth--) node = tree ? findNodeAtLocation(tree, problem.path.slice(0, depth) as (string | number)[]) : undefined;
  // An unknown key is underlined at the key, not its value.
  const target = node?.parent?.type === 'property' && node.parent.children?.[1] === node && /unknown setting/.test(problem.message) ? node.parent.children[0] : node;
  const offset = target?.offset ?? 0;
  return { ...problem, offset, length: target?.length ?? 0, ...lineAndColumn(text, offset) };
}

/**
 * Parses and checks a config's text: syntax, then the schema, then (once the schema holds) the
 * semantic checks. With `environment`, files the config names must exist. `config` is set when no
 * problem is an error. The CLI, the editor's diagnostics and "Start Run" all call this.
 */
export function readConfigText(text: string, environment?: CheckEnvironment): ConfigRead {
  const parseErrors: ParseError[] = [];
  const tree = parseTree(text, parseErrors, { allowTrailingComma: true, disallowComments: false });
  if (parseErrors.length > 0 || !tree) {
    return {
      config: undefined,
      problems: parseErrors.map((error) => ({ path: [], message: `JSON syntax: ${printParseErrorCode(error.error)}`, source: 'syntax', severity: 'error', offset: error.offset, length: error.length, ...lineAndColumn(text, error.offset) })),
    };
  }
  const raw = nodeValue(tree);
  const { value: checked, problems } = validate(runConfigSchema, raw);
  const value = checked as RunConfig | undefined;
  const all = value
    ? semanticProblems(value, raw, environment).map((problem) => ({ ...problem, source: 'semantic' as const }))
    : problems.map((problem) => ({ ...problem, source: 'schema' as const, severity: 'error' as const }));
  const located = all.map((problem) => locate(text, tree, problem)).sort((a, b) => a.offset - b.offset);
  return { config: all.some((problem) => problem.severity === 'error') ? undefined : value, problems: located };
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
  return `${file}:${problem.line}:${problem.column}: ${problem.severity === 'warning' ? 'warning: ' : ''}${problem.path.length > 0 ? `${formatPath(problem.path)} ` : ''}${problem.message}`;
}
