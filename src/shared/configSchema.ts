/**
 * A small schema language for run configs: one declaration gives the TypeScript type (`Infer`), the
 * JSON Schema the editor validates `*.rlhf.json` with (`toJsonSchema`), and the validator the trainer
 * runs (`validate`, which also fills defaults). One source, so the three cannot drift.
 */
import { quote } from './userError';

interface Documented {
  /** One line on the effect, shown in hover docs. */
  readonly description: string;
  /** The name TRL (or Hugging Face Trainer) uses for the same setting, when it has one. */
  readonly trl?: string;
}

export interface NumberNode extends Documented {
  readonly kind: 'number';
  readonly integer?: boolean;
  readonly default?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
}
export interface StringNode extends Documented {
  readonly kind: 'string';
  readonly default?: string;
  readonly pattern?: string;
  readonly minLength?: number;
  /** Longest value accepted: a name or path that long is a mistake, and run.json would store it whole. */
  readonly maxLength?: number;
}
export interface BooleanNode extends Documented {
  readonly kind: 'boolean';
  readonly default?: boolean;
}
export interface EnumNode<V extends string = string> extends Documented {
  readonly kind: 'enum';
  readonly values: readonly V[];
  readonly default?: V;
  /** One line per value, for completion and hover. */
  readonly valueDescriptions?: readonly string[];
}
export interface ObjectNode<P extends Record<string, SchemaNode> = Record<string, SchemaNode>> extends Documented {
  readonly kind: 'object';
  readonly properties: P;
  /** Properties that must be written (the rest have defaults or are optional). */
  readonly required?: readonly (keyof P & string)[];
}
export interface ArrayNode<I extends SchemaNode = SchemaNode> extends Documented {
  readonly kind: 'array';
  readonly items: I;
  readonly minItems?: number;
  readonly default?: readonly unknown[];
}
/** One of several object shapes, told apart by a string property (`"type": "sft"`). */
// `any`: any object shape; `required` makes ObjectNode<P> invariant in P.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any object shape (see the line above)
export type AnyObjectNode = ObjectNode<any>;

export interface TaggedNode<
  K extends string = string,
  V extends Record<string, AnyObjectNode> = Record<string, AnyObjectNode>,
> extends Documented {
  readonly kind: 'tagged';
  readonly tag: K;
  readonly variants: V;
}
/** A map from keys the user chooses (matching `keyPattern`) to values of one node (a sweep's settings). */
export interface RecordNode<V extends SchemaNode = SchemaNode> extends Documented {
  readonly kind: 'record';
  readonly keyPattern: string;
  /** What a key names, for the message of one that does not match. */
  readonly keyDescription: string;
  readonly values: V;
}
/** A number, string or boolean: a value whose meaning depends on where it goes (a sweep's values). */
export interface ScalarNode extends Documented {
  readonly kind: 'scalar';
}
export interface OptionalNode<N extends SchemaNode = SchemaNode> {
  readonly kind: 'optional';
  readonly node: N;
}

export type SchemaNode =
  | NumberNode
  | StringNode
  | BooleanNode
  | EnumNode
  | AnyObjectNode
  | ArrayNode
  | TaggedNode
  | RecordNode
  | ScalarNode
  | OptionalNode;

// ------------------------------------------------------------------------------------------------
// Builders
// ------------------------------------------------------------------------------------------------

export const s = {
  number: (options: Omit<NumberNode, 'kind'>): NumberNode => ({ kind: 'number', ...options }),
  integer: (options: Omit<NumberNode, 'kind' | 'integer'>): NumberNode => ({
    kind: 'number',
    integer: true,
    ...options,
  }),
  string: (options: Omit<StringNode, 'kind'>): StringNode => ({ kind: 'string', ...options }),
  boolean: (options: Omit<BooleanNode, 'kind'>): BooleanNode => ({ kind: 'boolean', ...options }),
  enum: <const V extends string>(values: readonly V[], options: Omit<EnumNode<V>, 'kind' | 'values'>): EnumNode<V> => ({
    kind: 'enum',
    values,
    ...options,
  }),
  object: <P extends Record<string, SchemaNode>>(
    properties: P,
    options: Omit<ObjectNode<P>, 'kind' | 'properties'>,
  ): ObjectNode<P> => ({ kind: 'object', properties, ...options }),
  array: <I extends SchemaNode>(items: I, options: Omit<ArrayNode<I>, 'kind' | 'items'>): ArrayNode<I> => ({
    kind: 'array',
    items,
    ...options,
  }),
  tagged: <K extends string, V extends Record<string, AnyObjectNode>>(
    tag: K,
    variants: V,
    options: Documented,
  ): TaggedNode<K, V> => ({ kind: 'tagged', tag, variants, ...options }),
  record: <V extends SchemaNode>(values: V, options: Omit<RecordNode<V>, 'kind' | 'values'>): RecordNode<V> => ({
    kind: 'record',
    values,
    ...options,
  }),
  scalar: (options: Documented): ScalarNode => ({ kind: 'scalar', ...options }),
  optional: <N extends SchemaNode>(node: N): OptionalNode<N> => ({ kind: 'optional', node }),
};

// ------------------------------------------------------------------------------------------------
// Types
// ------------------------------------------------------------------------------------------------

type InferObject<P extends Record<string, SchemaNode>> = {
  readonly [K in keyof P as P[K] extends OptionalNode ? never : K]: Infer<P[K]>;
} & {
  readonly [K in keyof P as P[K] extends OptionalNode ? K : never]?: Infer<P[K]>;
};

type InferTagged<K extends string, V extends Record<string, AnyObjectNode>> = {
  [T in keyof V & string]: { readonly [key in K]: T } & Infer<V[T]>;
}[keyof V & string];

/** The value a node validates to, defaults filled in. */
export type Infer<N> = 0 extends 1 & N
  ? unknown // `any` in, `unknown` out: stops the recursion on untyped nodes
  : N extends OptionalNode<infer Inner>
    ? Infer<Inner>
    : N extends NumberNode
      ? number
      : N extends StringNode
        ? string
        : N extends BooleanNode
          ? boolean
          : N extends EnumNode<infer V>
            ? V
            : N extends ObjectNode<infer P>
              ? InferObject<P>
              : N extends ArrayNode<infer I>
                ? readonly Infer<I>[]
                : N extends TaggedNode<infer K, infer V>
                  ? InferTagged<K, V>
                  : N extends RecordNode<infer V>
                    ? Readonly<Record<string, Infer<V>>>
                    : N extends ScalarNode
                      ? number | string | boolean
                      : never;

// ------------------------------------------------------------------------------------------------
// JSON Schema
// ------------------------------------------------------------------------------------------------

type JsonSchema = Record<string, unknown>;

function describe(node: Documented & { default?: unknown }): string {
  const parts = [node.description];
  if (node.trl) parts.push(`TRL: \`${node.trl}\`.`);
  if (node.default !== undefined) parts.push(`Default: \`${JSON.stringify(node.default)}\`.`);
  return parts.join(' ');
}

/** JSON Schema (draft-07, what VS Code's JSON language service reads) with markdown hover docs. */
export function toJsonSchema(node: SchemaNode): JsonSchema {
  switch (node.kind) {
    case 'optional':
      return toJsonSchema(node.node);
    case 'number':
      return clean({
        type: node.integer ? 'integer' : 'number',
        description: node.description,
        markdownDescription: describe(node),
        default: node.default,
        minimum: node.minimum,
        maximum: node.maximum,
        exclusiveMinimum: node.exclusiveMinimum,
      });
    case 'string':
      return clean({
        type: 'string',
        description: node.description,
        markdownDescription: describe(node),
        default: node.default,
        pattern: node.pattern,
        minLength: node.minLength,
        maxLength: node.maxLength,
      });
    case 'boolean':
      return clean({
        type: 'boolean',
        description: node.description,
        markdownDescription: describe(node),
        default: node.default,
      });
    case 'enum':
      return clean({
        type: 'string',
        enum: node.values,
        markdownEnumDescriptions: node.valueDescriptions,
        description: node.description,
        markdownDescription: describe(node),
        default: node.default,
      });
    case 'array':
      return clean({
        type: 'array',
        items: toJsonSchema(node.items),
        minItems: node.minItems,
        description: node.description,
        markdownDescription: describe(node),
        default: node.default,
      });
    case 'object':
      return objectSchema(node);
    case 'record':
      return {
        type: 'object',
        description: node.description,
        markdownDescription: describe(node),
        propertyNames: { pattern: node.keyPattern },
        additionalProperties: toJsonSchema(node.values),
      };
    case 'scalar':
      return {
        type: ['number', 'string', 'boolean'],
        description: node.description,
        markdownDescription: describe(node),
      };
    case 'tagged':
      return {
        type: 'object',
        description: node.description,
        markdownDescription: describe(node),
        required: [node.tag],
        properties: {
          [node.tag]: { type: 'string', enum: Object.keys(node.variants), description: `Which kind of ${node.tag}.` },
        },
        // if/then per variant gives completion of the right fields once the tag is written.
        allOf: Object.entries(node.variants).map(([tag, variant]) => ({
          if: { properties: { [node.tag]: { const: tag } }, required: [node.tag] },
          then: objectSchema(variant, { [node.tag]: { const: tag } }),
        })),
      };
  }
}

function objectSchema(node: AnyObjectNode, extra: Record<string, JsonSchema> = {}): JsonSchema {
  const properties: Record<string, JsonSchema> = { ...extra };
  for (const [key, child] of Object.entries(node.properties as Record<string, SchemaNode>))
    properties[key] = toJsonSchema(child);
  return clean({
    type: 'object',
    description: node.description,
    markdownDescription: describe(node),
    properties,
    required: node.required && node.required.length > 0 ? node.required : undefined,
    additionalProperties: false,
    defaultSnippets: undefined,
  });
}

function clean(schema: JsonSchema): JsonSchema {
  return Object.fromEntries(Object.entries(schema).filter(([, value]) => value !== undefined));
}

// ------------------------------------------------------------------------------------------------
// Validation
// ------------------------------------------------------------------------------------------------

/** A problem at a path of keys and indices from the document root, e.g. ["stages", 0, "learning_rate"]. */
export interface ConfigProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

export function formatPath(path: readonly (string | number)[]): string {
  return path.length === 0
    ? '(root)'
    : path.map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? part : `.${part}`)).join('');
}

function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

/**
 * Checks `value` against `node`, filling defaults. Collects every problem rather than stopping at
 * the first, so an editor can underline them all at once.
 */
export function validate(node: SchemaNode, value: unknown): { value: unknown; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const result = check(node, value, [], problems);
  return { value: problems.length === 0 ? result : undefined, problems };
}

function check(node: SchemaNode, value: unknown, path: (string | number)[], problems: ConfigProblem[]): unknown {
  const fail = (message: string) => {
    problems.push({ path, message });
    return undefined;
  };
  switch (node.kind) {
    case 'optional':
      return value === undefined ? undefined : check(node.node, value, path, problems);
    case 'number': {
      if (value === undefined && node.default !== undefined) return node.default;
      if (typeof value !== 'number' || !Number.isFinite(value))
        return fail(`must be a ${node.integer ? 'whole number' : 'number'}, got ${quote(value)}`);
      if (node.integer && !Number.isInteger(value)) return fail(`must be a whole number, got ${quote(value)}`);
      if (node.minimum !== undefined && value < node.minimum) return fail(`must be ≥ ${node.minimum}, got ${value}`);
      if (node.exclusiveMinimum !== undefined && value <= node.exclusiveMinimum)
        return fail(`must be > ${node.exclusiveMinimum}, got ${value}`);
      if (node.maximum !== undefined && value > node.maximum) return fail(`must be ≤ ${node.maximum}, got ${value}`);
      return value;
    }
    case 'string':
      if (value === undefined && node.default !== undefined) return node.default;
      if (typeof value !== 'string')
        return fail(`must be a string, got ${value === undefined ? 'nothing' : typeName(value)}`);
      // Before the pattern: the length is the problem of a 50 MB value, and the message quotes it cut.
      if (node.maxLength !== undefined && value.length > node.maxLength)
        return fail(`must have at most ${node.maxLength} characters, got ${value.length}: ${quote(value)}`);
      if (node.minLength !== undefined && value.length < node.minLength)
        return fail(node.minLength === 1 ? 'must not be empty' : `must have at least ${node.minLength} characters`);
      if (node.pattern !== undefined && !new RegExp(node.pattern).test(value))
        return fail(`must match ${node.pattern}, got ${quote(value)}`);
      return value;
    case 'boolean':
      if (value === undefined && node.default !== undefined) return node.default;
      if (typeof value !== 'boolean') return fail(`must be true or false, got ${quote(value)}`);
      return value;
    case 'enum':
      if (value === undefined && node.default !== undefined) return node.default;
      if (typeof value !== 'string' || !node.values.includes(value))
        return fail(`must be one of ${node.values.map((v) => `"${v}"`).join(', ')}, got ${quote(value)}`);
      return value;
    case 'array': {
      if (value === undefined && node.default !== undefined) return node.default;
      if (!Array.isArray(value))
        return fail(`must be a list, got ${value === undefined ? 'nothing' : typeName(value)}`);
      if (node.minItems !== undefined && value.length < node.minItems)
        return fail(`must have at least ${node.minItems} item${node.minItems === 1 ? '' : 's'}`);
      return value.map((item, index) => check(node.items, item, [...path, index], problems));
    }
    case 'object':
      return checkObject(node, value, path, problems);
    case 'record':
      return checkRecord(node, value, path, problems);
    case 'scalar':
      if (!(
        typeof value === 'string' ||
        typeof value === 'boolean' ||
        (typeof value === 'number' && Number.isFinite(value))
      ))
        return fail(`must be a number, a string or true/false, got ${quote(value)}`);
      return value;
    case 'tagged': {
      if (value === undefined) return fail(`is required: ${node.description}`);
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        return fail(`must be an object, got ${typeName(value)}`);
      const tag = (value as Record<string, unknown>)[node.tag];
      const variant = typeof tag === 'string' ? node.variants[tag] : undefined;
      if (!variant) {
        problems.push({
          path: [...path, node.tag],
          message: `must be one of ${Object.keys(node.variants)
            .map((v) => `"${v}"`)
            .join(', ')}, got ${quote(tag)}`,
        });
        return undefined;
      }
      return checkObject(variant, value, path, problems, node.tag);
    }
  }
}

/** The known key nearest to a misspelt one (edit distance ≤ 2, or the same letters without separators). */
function closest(key: string, known: readonly string[]): string | undefined {
  const bare = (text: string) => text.toLowerCase().replace(/[_-]/g, '');
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const distance = bare(candidate) === bare(key) ? 0 : editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** Levenshtein distance: the fewest single-character edits from `a` to `b` (for "did you mean"). */
export function editDistance(a: string, b: string): number {
  // Quadratic: a 50 MB value compared with a setting's name would take minutes. Values that long are
  // no typo of a name; the longer length is within the shorter one's length of the exact distance.
  if (a.length > 256 || b.length > 256) return Math.max(a.length, b.length);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length];
}

function checkRecord(node: RecordNode, value: unknown, path: (string | number)[], problems: ConfigProblem[]): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push({ path, message: `must be an object, got ${value === undefined ? 'nothing' : typeName(value)}` });
    return undefined;
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    if (!new RegExp(node.keyPattern).test(key)) {
      problems.push({ path: [...path, key], message: `${quote(key)} is not ${node.keyDescription}` });
      continue;
    }
    const checked = check(node.values, item, [...path, key], problems);
    if (checked !== undefined) out[key] = checked;
  }
  return out;
}

function checkObject(
  node: AnyObjectNode,
  value: unknown,
  path: (string | number)[],
  problems: ConfigProblem[],
  tagKey?: string,
): unknown {
  if (value === undefined && !(node.required && node.required.length > 0)) value = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push({ path, message: `must be an object, got ${value === undefined ? 'nothing' : typeName(value)}` });
    return undefined;
  }
  const record = value as Record<string, unknown>;
  const out: Record<string, unknown> = tagKey ? { [tagKey]: record[tagKey] } : {};
  for (const key of Object.keys(record)) {
    if (key === tagKey || key === '$schema' || key in node.properties) continue;
    const near = closest(key, Object.keys(node.properties));
    problems.push({
      path: [...path, key],
      message: `unknown setting ${quote(key)}${near ? `; did you mean "${near}"?` : ''}`,
    });
  }
  for (const [key, child] of Object.entries(node.properties as Record<string, SchemaNode>)) {
    if (record[key] === undefined && node.required?.includes(key)) {
      problems.push({
        path: [...path, key],
        message: `is required: ${child.kind === 'optional' ? '' : child.description}`,
      });
      continue;
    }
    const checked = check(child, record[key], [...path, key], problems);
    if (checked !== undefined) out[key] = checked;
  }
  return out;
}
