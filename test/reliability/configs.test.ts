/**
 * configs: every broken config — the fixtures of test/fixtures/broken-configs and the hostile
 * corpus of hostileConfigs.ts — run through `rlhf-lens train` as a user would. Each must exit
 * non-zero with `error: <file>:<line>:` on the line the fixture records, print no stack trace, keep
 * its messages short (a 50 MB value is not echoed), and write no run folder anywhere.
 */
import * as assert from 'node:assert/strict';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import {
  ensureDir,
  escapeRegExp,
  Family,
  hasStackTrace,
  listTree,
  repoRoot,
  requireBuild,
  runCli,
  scratchDir,
  tail,
} from './harness';
import { hostileConfigs, type HostileConfig } from './hostileConfigs';

const family = new Family('configs');
const root = scratchDir('configs');
const fixtures = path.join(repoRoot, 'test', 'fixtures', 'broken-configs');
const manifest = JSON.parse(readFileSync(path.join(fixtures, 'manifest.json'), 'utf8')) as Record<
  string,
  { line: number; message: string }
>;

before(requireBuild);
after(() => {
  console.log(
    family.report(
      `${family.ratio('rejected')} rejected with file:line, ${family.sum('runFolders')} run folders written, ` +
        `${family.ratio('noStack')} without a stack trace`,
    ),
  );
  rmSync(root, { recursive: true, force: true });
});

/** "5", "1 or 21", "5–23". */
function describeLines(lines: readonly number[]): string {
  return lines.length === 1
    ? String(lines[0])
    : lines.length === 2
      ? `${lines[0]} or ${lines[1]}`
      : `${lines[0]}–${lines.at(-1)}`;
}

/** Longest stderr a rejected config may print: a few problems, each cut to 200 characters of value. */
const maxStderrBytes = 16 * 1024;
const maxLineLength = 1000;

async function check(
  name: string,
  fileName: string,
  write: (dir: string) => void,
  lines: readonly number[],
  mentions: RegExp | undefined,
  timeoutMs: number,
): Promise<void> {
  const caseDir = ensureDir(path.join(root, name));
  write(caseDir);
  const existing = new Set(listTree(caseDir));
  // As a user types it: the config's name relative to the working folder, runs going to a folder beside it.
  const result = await runCli(['train', fileName, '--runs-dir', 'runs'], { cwd: caseDir, timeoutMs });
  const failures: string[] = [];
  const errorLines = result.stderr.split('\n').filter((line) => line.startsWith('error: '));
  const located = new RegExp(`^error: (?:.*/)?${escapeRegExp(fileName)}:(\\d+):`);
  const named = errorLines
    .map((line) => located.exec(line))
    .filter((match): match is RegExpExecArray => match !== null);
  const onLine = named.some((match) => lines.includes(Number(match[1])));
  if (result.timedOut) failures.push(`still running after ${timeoutMs / 1000} s (killed)`);
  else if (result.code === 0) failures.push('exit 0: the config was accepted');
  if (named.length === 0)
    failures.push(`no "error: ${fileName}:<line>:" line; stderr: ${tail(result.stderr, 3) || '(empty)'}`);
  else if (!onLine)
    failures.push(`error names line ${named.map((match) => match[1]).join(', ')}, expected ${describeLines(lines)}`);
  if (mentions && onLine && !errorLines.some((line) => mentions.test(line)))
    failures.push(`the error does not mention ${mentions}`);
  const stack = hasStackTrace(result.stderr);
  if (stack) failures.push('a stack trace was printed');
  if (result.stderrBytes > maxStderrBytes)
    failures.push(`stderr is ${result.stderrBytes} bytes (a value echoed whole?)`);
  const longest = Math.max(0, ...result.stderr.split('\n').map((line) => line.length));
  if (longest > maxLineLength) failures.push(`a ${longest}-character stderr line`);
  const written = listTree(caseDir).filter((entry) => !existing.has(entry));
  if (written.length > 0)
    failures.push(
      `wrote ${written.slice(0, 3).join(', ')}${written.length > 3 ? ` and ${written.length - 3} more` : ''}`,
    );
  const runFolders = written.filter((entry) => /^(runs|\.rlhf\/runs)\/[^/]+\/$/.test(entry)).length;
  family.record(
    name,
    { rejected: result.code !== 0 && !result.timedOut && onLine, runFolders, noStack: !stack },
    failures,
  );
  assert.deepEqual(failures, []);
}

for (const [file, expected] of Object.entries(manifest)) {
  test(`fixture ${file}: error on line ${expected.line}, no run folder`, () =>
    check(
      file.replace('.rlhf.json', ''),
      file,
      (dir) => copyFileSync(path.join(fixtures, file), path.join(dir, file)),
      [expected.line],
      new RegExp(escapeRegExp(expected.message)),
      60_000,
    ));
}

for (const hostile of hostileConfigs()) {
  const file = `${hostile.name}.rlhf.json`;
  test(`hostile ${hostile.name}: error on line ${describeLines(hostile.lines)}, no run folder`, () =>
    check(
      hostile.name,
      file,
      (dir) => writeHostile(dir, file, hostile),
      hostile.lines,
      hostile.mentions,
      hostile.name.startsWith('memory-bomb') ? 30_000 : 60_000,
    ));
}

function writeHostile(dir: string, file: string, hostile: HostileConfig): void {
  hostile.setup?.(dir);
  writeFileSync(path.join(dir, file), hostile.bytes);
}
