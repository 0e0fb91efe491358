// Where the test tools live and the environment their installers run in; shared by
// scripts/ensureTestTools.mjs (which installs them) and test/vscode/codeServer.ts (which runs them).
import { homedir } from 'node:os';
import { delimiter, join, sep } from 'node:path';

export const CODE_SERVER_VERSION = '4.139.1';

/**
 * The tools' cache: `RLHF_LENS_TOOLS_CACHE` when set (point it at an empty folder to test a first
 * install), else `$XDG_CACHE_HOME/rlhf-lens`, else `~/.cache/rlhf-lens`. Outside the repository:
 * code-server is ~600 MB and machine-specific.
 */
export function toolsCacheDir(env = process.env) {
  if (env.RLHF_LENS_TOOLS_CACHE) return env.RLHF_LENS_TOOLS_CACHE;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'rlhf-lens');
}

export function codeServerDir(env = process.env) {
  return join(toolsCacheDir(env), `code-server-${CODE_SERVER_VERSION}`);
}

/**
 * The environment a nested install runs in: the caller's, less what npm puts there for a running
 * script. Under `npm test`, npm exports `npm_config_*` (among them `npm_config_user_agent`, which names
 * the Node that runs npm: code-server's postinstall reads it and refuses anything but Node 24),
 * `npm_lifecycle_*`, `npm_package_*`, `INIT_CWD`, and prepends the project's `node_modules/.bin` to PATH.
 * A nested `npm install` must not see any of it, or it installs as if it were part of this project.
 */
export function cleanInstallEnv(env = process.env) {
  const clean = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const lower = key.toLowerCase();
    // npm also sets NODE (its node binary) and COLOR for scripts.
    if (lower.startsWith('npm_') || key === 'INIT_CWD' || key === 'NODE' || key === 'COLOR') continue;
    clean[key] = value;
  }
  const pathKey = Object.keys(clean).find((key) => key.toUpperCase() === 'PATH') ?? 'PATH';
  clean[pathKey] = (clean[pathKey] ?? '')
    .split(delimiter)
    .filter(
      (entry) =>
        entry !== '' && !entry.includes(`${sep}node_modules${sep}.bin`) && !entry.endsWith(`${sep}node-gyp-bin`),
    )
    .join(delimiter);
  return clean;
}
