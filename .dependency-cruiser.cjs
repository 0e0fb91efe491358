// Import rules that need the resolved module graph, checked by `npm run lint` (depcruise over src and webview;
// test/unit/dependencyRules.test.ts proves each rule rejects what it should). DESIGN.md's room rules (what core,
// shared, trainer, host and webview may import) live in eslint.config.mjs, one place per rule: here only what eslint
// cannot see — cycles (they need the whole graph) and the algorithm boundary (matched on resolved paths, dynamic
// `import()` included, which eslint's no-restricted-imports does not check).

/** The algorithm rooms: they talk to the engine seam (src/trainer/engine/engine.ts) and a task, nothing below. */
const algorithms = '^src/trainer/(?:(?:sft|reward|ppo|dpo|preferences|loop)/|stageLoop\\.ts$)';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'A file cycle has no first module to read, test or load, and none of its files can be moved or replaced ' +
        'alone (at run time its modules may also see each other half-initialised). Move what both sides need ' +
        'into a third module that both import; type-only imports count, so a shared type moves too.',
      from: {},
      to: { circular: true },
    },
    // depcruise's folder scope: a folder stands for everything under it, and its imports are those that leave it.
    // So src/trainer/pipeline.ts importing ppo/ is no trainer → ppo edge: a folder's top-level files (entry points,
    // shared types such as stageContext.ts) may import its subfolders, and the subfolders may import them back.
    {
      name: 'no-folder-cycles',
      severity: 'error',
      comment:
        'A folder is a room with one job; two folders importing each other are one room in two places, and ' +
        'neither can be understood, tested or replaced (another engine, another task) without the other. Move ' +
        'the shared piece to the lower folder or into its own, so imports between folders go one way.',
      scope: 'folder',
      from: {},
      to: { circular: true },
    },
    {
      name: 'algorithm-not-to-engine-library',
      severity: 'error',
      comment:
        'Algorithms (SFT, reward, PPO, DPO, preferences, the stage loop) talk to the engine seam only, so a ' +
        'second engine is one more implementation, not an edit of every algorithm: no tfjs, no onnxruntime.',
      from: { path: algorithms },
      to: { path: '(?:^|/)(?:@tensorflow/|onnxruntime[a-z-]*(?:/|$))' },
    },
    {
      name: 'algorithm-not-to-tfjs-engine',
      severity: 'error',
      comment:
        'The tfjs engine lives behind the seam in src/trainer/engine/tfjs/ and only engineFactory.ts names it; ' +
        'algorithms use the seam (context.engine), never an implementation or the factory.',
      from: { path: algorithms },
      to: { path: '^src/trainer/(?:engine/tfjs/|engineFactory\\.ts$)' },
    },
    {
      name: 'algorithm-not-to-demo-task',
      severity: 'error',
      comment:
        "The demo's sentiment task reaches algorithms through the task interface (score(text)) that the pipeline " +
        'hands them, so an algorithm trains on any task: no import of src/trainer/demo/ or the sentiment oracle.',
      from: { path: algorithms },
      to: { path: '^src/trainer/(?:demo/|data/sentimentOracle\\.ts$)' },
    },
  ],
  options: {
    // Type-only imports count: a cycle of types is still two files that cannot be read or moved alone.
    tsPreCompilationDeps: true,
    // Resolve imports as tsc does (path from this file, so the config also works from the tests' fixture trees).
    tsConfig: { fileName: `${__dirname}/tsconfig.json` },
    // Packages are leaves: their own imports are not ours to check (and reading them costs seconds).
    doNotFollow: { path: '(?:^|/)node_modules/' },
  },
};
