/** Fixture folders written by Debian's Python the way another engine writes them (the importer tests). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** Runs Python `body` with `out` (a fresh temp folder) and `json, os, dataclasses, math` in scope; returns `out`. */
export function pythonFixture(body: string): string {
  const out = mkdtempSync(path.join(tmpdir(), 'rlhf-import-'));
  const script = ['import json, os, dataclasses, math', `out = ${JSON.stringify(out)}`, body].join('\n');
  execFileSync('/usr/bin/python3', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  return out;
}
