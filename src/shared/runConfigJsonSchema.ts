/**
 * The JSON Schema of `*.rlhf.json` files, generated from the same declarations as the config's
 * TypeScript types and the trainer's validator (runConfig.ts), so the three cannot drift.
 * scripts/build.mjs writes it to dist/schemas/rlhf-run.schema.json, which package.json contributes
 * through `jsonValidation` (completion, hover docs, enums and errors while typing).
 */
import { toJsonSchema } from './configSchema';
import { runConfigSchema } from './runConfig';

export const runConfigSchemaFile = 'dist/schemas/rlhf-run.schema.json';

export function runConfigJsonSchema(): Record<string, unknown> {
  const schema = toJsonSchema(runConfigSchema);
  const properties = schema.properties as Record<string, unknown>;
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://rlhf-lens.dev/schemas/rlhf-run.schema.json',
    title: 'RLHF Lens run config',
    ...schema,
    // A config may name its schema; VS Code's JSON editor allows comments and trailing commas here,
    // as the trainer's reader does.
    properties: {
      $schema: {
        type: 'string',
        description: 'The JSON Schema of this file (optional; *.rlhf.json files get it automatically).',
      },
      ...properties,
    },
    allowComments: true,
    allowTrailingCommas: true,
  };
}
