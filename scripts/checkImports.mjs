// `npm run lint`'s import step: dependency-cruiser with .dependency-cruiser.cjs over the folders given (run from the
// repository root: `node scripts/checkImports.mjs src webview`). depcruise's own report prints a rule's reason with
// every violation and a folder cycle once from each of its folders; this prints each broken rule once, with its
// reason, then one line per violation, each cycle once, from its first member in path order.
// Exit status: 0 clean, 1 a rule is broken, 2 depcruise could not check.
// `npx depcruise --config .dependency-cruiser.cjs src webview` gives depcruise's own report of the same check.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repositoryRoot = fileURLToPath(new URL('..', import.meta.url));
const depcruise = path.join(repositoryRoot, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const configFile = path.join(repositoryRoot, '.dependency-cruiser.cjs');
/** The JSON module graph of src + webview is ~0.5 MB and grows with the tree; Node's default 1 MB would cut it. */
const reportBufferBytes = 64 * 1024 * 1024;
const reasonWidth = 100;

/** Runs depcruise; returns its JSON result, or exits 2 with depcruise's own words when it could not check. */
function cruise(folders) {
  const run = spawnSync(process.execPath, [depcruise, '--config', configFile, '--output-type', 'json', ...folders], {
    encoding: 'utf8',
    maxBuffer: reportBufferBytes,
  });
  try {
    return JSON.parse(run.stdout);
  } catch {
    console.error(`dependency-cruiser could not check the imports (exit ${run.status ?? run.signal}):`);
    console.error((run.stderr || run.stdout || run.error?.message || '').trim());
    process.exit(2);
  }
}

/** A cycle as its modules (or folders) in order, starting where depcruise found it and ending back there. */
function cyclePath(violation) {
  return [violation.from, ...violation.cycle.map((step) => step.name)];
}

/**
 * The same cycle found from each of its members is one cycle: written from its smallest member (in path order),
 * so each cycle reads the same in every report.
 */
function canonicalCycle(nodes) {
  const ring = nodes.slice(0, -1);
  const start = ring.indexOf([...ring].sort()[0]);
  return [...ring.slice(start), ...ring.slice(0, start), ring[start]].join(' → ');
}

function describe(violation) {
  return violation.cycle ? canonicalCycle(cyclePath(violation)) : `${violation.from} → ${violation.to}`;
}

function wrap(text, indent) {
  const lines = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + word.length + 1 > reasonWidth) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.map((wrapped) => indent + wrapped).join('\n');
}

const folders = process.argv.slice(2);
if (folders.length === 0) {
  console.error('Usage: node scripts/checkImports.mjs <folder>... (e.g. src webview)');
  process.exit(2);
}
const result = cruise(folders);
const rules = new Map(result.summary.ruleSetUsed.forbidden.map((rule) => [rule.name, rule]));
const broken = new Map();
for (const violation of result.summary.violations.filter((violation) => violation.rule.severity === 'error')) {
  const seen = broken.get(violation.rule.name) ?? new Set();
  seen.add(describe(violation));
  broken.set(violation.rule.name, seen);
}
if (broken.size > 0) {
  const count = [...broken.values()].reduce((total, seen) => total + seen.size, 0);
  console.error(`Import rules broken: ${count} (the rules and why they exist: .dependency-cruiser.cjs)\n`);
  for (const [name, seen] of broken) {
    console.error(`${name} (${seen.size}):`);
    console.error(wrap(rules.get(name)?.comment ?? '', '    '));
    for (const line of seen) console.error(`  ${line}`);
    console.error('');
  }
  process.exit(1);
}
