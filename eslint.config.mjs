// Lint: TypeScript's recommended rules plus the import boundaries of DESIGN.md's table, so a wrong
// import fails `npm run lint` (and with it the tests) instead of waiting for a review. Rules that need the
// resolved module graph (no file or folder cycles; algorithms import no engine library, no tfjs engine and no
// demo task) are dependency-cruiser's, in .dependency-cruiser.cjs: one place per rule.
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const nodeBuiltins = ['node:*', ...builtinModules, ...builtinModules.map((name) => `${name}/*`)];
const nativeEngines = ['@tensorflow/*', 'onnxruntime-node', 'onnxruntime-*', 'apache-arrow', 'apache-arrow/*'];

/** One `no-restricted-imports` entry per boundary; `because` becomes the message a developer sees. */
function boundary(files, forbidden) {
  return {
    files,
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: forbidden.map(({ group, because }) => ({ group, message: because })),
        },
      ],
    },
  };
}

export default tseslint.config(
  {
    ignores: ['dist/**', 'out/**', 'gpu-kit/**', 'node_modules/**', '.vscode-test/**', 'test-results/**', '**/*.d.ts'],
  },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // Prettier wraps code at 120 columns but not strings, template literals or comments: this catches those.
    // Only URLs may run longer (they cannot be split and still be clicked or searched for).
    rules: { 'max-len': ['error', { code: 120, ignoreUrls: true }] },
  },
  boundary(
    ['src/core/**'],
    [
      { group: ['vscode'], because: 'src/core/ is pure math that runs anywhere: no vscode.' },
      { group: nodeBuiltins, because: 'src/core/ does no I/O: no Node built-ins.' },
      { group: nativeEngines, because: 'src/core/ works on plain arrays: no tensor or ONNX engines.' },
      {
        group: [
          '**/shared',
          '**/shared/**',
          '**/trainer',
          '**/trainer/**',
          '**/host',
          '**/host/**',
          '**/extension',
          '**/webview/**',
        ],
        because: 'src/core/ may import nothing of ours but core/.',
      },
    ],
  ),
  boundary(
    ['src/shared/**'],
    [
      {
        group: ['vscode'],
        because: 'src/shared/ (protocol, formats) is read by the trainer, webviews and outside tools: no vscode.',
      },
      {
        group: nativeEngines.filter((group) => !group.startsWith('apache-arrow')),
        because: 'src/shared/ holds types and formats, not engines (Arrow, a format library, is fine).',
      },
      {
        group: ['**/trainer', '**/trainer/**', '**/host', '**/host/**', '**/extension', '**/webview/**'],
        because: 'src/shared/ may import only core/.',
      },
    ],
  ),
  boundary(
    ['src/trainer/**'],
    [
      { group: ['vscode'], because: 'The trainer is a child process that also runs headless: never vscode.' },
      {
        group: ['**/host', '**/host/**', '**/extension', '**/webview/**'],
        because: 'The trainer may import only core/, shared/, tfjs and onnxruntime.',
      },
    ],
  ),
  boundary(
    ['src/host/**', 'src/extension.ts'],
    [
      {
        group: ['**/trainer', '**/trainer/**'],
        because: 'The host never trains in-process: start dist/trainer.js through the trainer supervisor.',
      },
      { group: ['@tensorflow/*'], because: 'The host never trains in-process: tfjs belongs to the trainer.' },
      { group: ['**/webview/**'], because: 'The host talks to webviews through src/shared/protocol.ts only.' },
    ],
  ),
  boundary(
    ['webview/**'],
    [
      { group: ['vscode'], because: 'Webviews run in a browser: no vscode (talk to the host with postMessage).' },
      { group: nodeBuiltins, because: 'Webviews run in a browser: no Node built-ins.' },
      {
        group: [...nativeEngines.filter((group) => !group.startsWith('apache-arrow'))],
        because: 'Webviews run in a browser: no native engines.',
      },
      {
        group: ['**/src/host', '**/src/host/**', '**/src/trainer', '**/src/trainer/**', '**/src/extension'],
        because: 'Webviews may import only src/core/ and src/shared/.',
      },
    ],
  ),
);
