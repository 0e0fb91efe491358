// A real single-node Slurm cluster on this machine for the tests that submit jobs (ENVIRONMENT.md, "Slurm").
// `ensureSlurmCluster()` is idempotent: it installs Debian's slurmctld, slurmd, slurm-client and munge when missing
// (as root, with apt-get, as scripts/ensureTestTools.mjs installs Chromium), writes a munge key and
// /etc/slurm/slurm.conf when absent, starts munged (as the munge user), slurmctld and slurmd when they are not
// running, and waits until `sinfo` shows the node ready. Not root: it only checks that a cluster answers.
// A slurm.conf that this script did not write (no MANAGED_MARKER line) is never touched: it is someone's cluster.
// Usage: `node scripts/slurmCluster.mjs` (bring it up) or `node scripts/slurmCluster.mjs status` (diagnostics).
//
// The cluster the tests get (Slurm 22.05, measured on these machines; test/unit/slurmCluster.test.ts checks most):
// - One node, `hostname -s`, with CPUs = max(nproc, 8) (config_overrides: tiny test jobs from several test files
//   share it) and RealMemory=8000 MB (`--mem` above it: "sbatch: error: Memory specification can not be
//   satisfied" / "Batch job submission failed: Requested node configuration is not available"; memory is not
//   consumed). Partitions: `debug` (default, no limit), `short` (MaxTime=5 minutes; EnforcePartLimits=ALL, so
//   `--time=10` there fails at submission: "Requested time limit is invalid (missing or exceeds some limit)") and
//   `urgent` (PriorityTier=10, PreemptMode=REQUEUE: a job there that needs the CPUs preempts debug/short jobs, which
//   get SIGTERM at once, "CANCELLED AT … DUE TO PREEMPTION" in their output, and are requeued).
// - An unknown partition: sbatch exits 1 with "sbatch: error: invalid partition specified: <name>" and "sbatch:
//   error: Batch job submission failed: Invalid partition name specified". No accounting, so `--account` and
//   `--qos` are not checked (any value is accepted) — except in the partition `lab` (AllowAccounts=lab-a): there
//   sbatch refuses a job with "Batch job submission failed: Invalid account or account/partition combination
//   specified", Slurm's own account refusal. Without an accounting database no account is confirmed, so it refuses
//   every job there, lab-a's too: `lab` exists only to meet that refusal.
// - Requeue (JobRequeue=1): `scontrol requeue <id>` (also from inside the job, `scontrol requeue $SLURM_JOB_ID`,
//   which returns 0 and kills the job at once) sends SIGTERM to every process of the job ("CANCELLED AT … DUE TO JOB
//   REQUEUE"), Restarts becomes 1, the job shows COMPLETING, then PENDING Reason=BeginTime for cred_expire + 1 = 11 s,
//   then runs again (about 12 s after the requeue) with SLURM_RESTART_COUNT=1. Use `--open-mode=append`, or the
//   restart truncates the output file. KillWait=10: SIGKILL 10 s after the SIGTERM of a cancel, requeue or limit.
// - Time limit: slurmctld checks limits and early signals every 30 s. With `--time=1 --signal=B:USR1@50` the batch
//   shell got USR1 15–24 s after the start and SIGTERM 75–84 s after ("CANCELLED AT … DUE TO TIME LIMIT"); the job
//   ends TIMEOUT, Reason=TimeLimit. Only with `B:` is anything signalled: `--signal=USR1@50` (no B) reaches no
//   process of a job without srun steps. `B:` signals the batch shell alone, not its children, and bash runs a trap
//   only once its foreground child exits: `exec` the trainer (it then gets USR1 itself), or start it in the
//   background, `wait`, and forward the signal from the trap.
// - No accounting storage, so no `sacct`. A finished job stays visible to `scontrol show job <id>` and to
//   `squeue --states=all -j <id>` (plain `squeue -j <id>` prints nothing, exit 0) for MinJobAge=300 s, with its final
//   JobState (COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL) and ExitCode=<code>:<signal>; after
//   that scontrol exits 1 with "slurm_load_jobs error: Invalid job id specified". A preempted job shows PENDING with
//   Restarts=1, never PREEMPTED: only the completion log has that. JobCompType=jobcomp/filetxt appends one line per
//   ended attempt to JOB_COMPLETION_LOG (readable by all): key=value pairs (JobId=… Name=… JobState=… Partition=…
//   NodeList=… ExitCode=… StartTime=… EndTime=…); a requeued attempt is logged as JobState=PENDING, a preempted one
//   as PREEMPTED, then the last attempt with its final state. It keeps final states after MinJobAge. A controller
//   started on an empty state folder numbers jobs from 1 again: the log is set aside first (jobcomp.log.<time>).
// - Job arrays: `scontrol show job -o <array id>` prints one line per task, each with its own JobId (the array's id
//   stays with the last task), ArrayJobId=<array id> and ArrayTaskId=<index> (one line with a range, `0-2`, while
//   they all pend); `%a` in --output is the index.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SLURM_PACKAGES = ['slurmctld', 'slurmd', 'slurm-client', 'munge'];
export const SLURM_CONF = '/etc/slurm/slurm.conf';
export const MUNGE_KEY = '/etc/munge/munge.key';
export const SLURM_LOG_DIR = '/var/log/slurm';
export const SLURMCTLD_LOG = `${SLURM_LOG_DIR}/slurmctld.log`;
export const SLURMD_LOG = `${SLURM_LOG_DIR}/slurmd.log`;
export const MUNGED_LOG = '/var/log/munge/munged.log';
export const JOB_COMPLETION_LOG = `${SLURM_LOG_DIR}/jobcomp.log`;
export const STATE_SAVE_DIR = '/var/spool/slurmctld';
export const PARTITIONS = { default: 'debug', short: 'short', urgent: 'urgent', accounts: 'lab' };
/** The first line of a slurm.conf this script wrote; any other slurm.conf is left alone. */
export const MANAGED_MARKER = '# Written by RLHF Lens scripts/slurmCluster.mjs for its tests';

// The tests' jobs are tiny and mostly wait, while several test files (and people) share the one node: declaring at
// least MIN_CPUS CPUs (config_overrides lets slurmd accept more than the machine has) keeps them from queueing
// behind each other for minutes.
const MIN_CPUS = 8;
// A requeued job may start again only cred_expire + 1 s after the requeue (Slurm's default, 120 s, would make every
// requeue test wait two minutes in Reason=BeginTime).
const CRED_EXPIRE_S = 10;
const READY_STATES = ['idle', 'mixed', 'allocated', 'completing'];
const READY_TIMEOUT_MS = 60_000;
const say = (message) => console.log(`[slurmCluster] ${message}`);

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000, ...options });
  return {
    ok: !result.error && result.status === 0,
    stdout: result.stdout ?? '',
    stderr: result.stderr ?? '',
    error: result.error?.message,
  };
}

function onPath(command) {
  return run('sh', ['-c', `command -v ${command}`]).ok;
}

/** `hostname -s`: the name slurmd registers as unless told otherwise. */
function shortHostname() {
  return hostname().split('.')[0] || 'localhost';
}

function isRoot() {
  return process.getuid?.() === 0;
}

/** The last `count` lines of a log file, indented, or why there are none. */
function tail(file, count = 15) {
  if (!existsSync(file)) return `    (${file} does not exist)`;
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n').slice(-count);
  return lines.map((line) => `    ${line}`).join('\n');
}

function daemonLogs() {
  return [SLURMCTLD_LOG, SLURMD_LOG, MUNGED_LOG].map((file) => `  last lines of ${file}:\n${tail(file)}`).join('\n');
}

/** The node states `sinfo` reports (e.g. ["idle"]), or undefined when slurmctld does not answer. */
function sinfoStates() {
  if (!onPath('sinfo')) return undefined;
  const result = run('sinfo', ['-h', '-o', '%T'], { timeout: 15_000 });
  if (!result.ok) return undefined;
  return result.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
}

/** The slurm.conf this script writes for this machine (see the header for what each choice gives the tests). */
export function slurmConfText(host = shortHostname(), cpuCount = cpus().length) {
  return `${MANAGED_MARKER}; rewritten when it changes. One node, this machine.
ClusterName=rlhflens
SlurmctldHost=${host}
AuthType=auth/munge
AuthInfo=cred_expire=${CRED_EXPIRE_S}
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmUser=root
SlurmdUser=root
StateSaveLocation=${STATE_SAVE_DIR}
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=${SLURMCTLD_LOG}
SlurmdLogFile=${SLURMD_LOG}
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=${JOB_COMPLETION_LOG}
SchedulerParameters=bf_interval=5,sched_interval=5
JobRequeue=1
EnforcePartLimits=ALL
MinJobAge=300
KillWait=10
InactiveLimit=0
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmdParameters=config_overrides
NodeName=${host} CPUs=${Math.max(cpuCount, MIN_CPUS)} RealMemory=8000 State=UNKNOWN
PartitionName=${PARTITIONS.default} Nodes=ALL Default=YES MaxTime=INFINITE PriorityTier=1 State=UP
PartitionName=${PARTITIONS.short} Nodes=ALL MaxTime=5 PriorityTier=1 State=UP
PartitionName=${PARTITIONS.urgent} Nodes=ALL MaxTime=INFINITE PriorityTier=10 GraceTime=10 State=UP
PartitionName=${PARTITIONS.accounts} Nodes=ALL MaxTime=5 PriorityTier=1 AllowAccounts=lab-a State=UP
`;
}

/** A "not installed" list, from dpkg (everything counts as missing where there is no dpkg). */
function missingPackages() {
  const query = run('dpkg-query', ['-W', '-f=${Package} ${Status}\n', ...SLURM_PACKAGES]);
  const installed = new Set(
    query.stdout
      .split('\n')
      .filter((line) => line.endsWith(' installed'))
      .map((line) => line.split(' ')[0]),
  );
  return SLURM_PACKAGES.filter((name) => !installed.has(name));
}

function installPackages(missing) {
  const advice = `Install them with: sudo apt-get update && sudo apt-get install -y ${missing.join(' ')}`;
  if (!onPath('apt-get'))
    throw new Error(`missing packages: ${missing.join(', ')}, and there is no apt-get here. ${advice}`);
  say(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', ...missing]]) {
    const result = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (result.status !== 0) throw new Error(`apt-get ${args[0]} failed. ${advice}`);
  }
  const still = missingPackages();
  if (still.length > 0) throw new Error(`apt-get finished but ${still.join(', ')} are still not installed. ${advice}`);
}

/** Gives `path` to `user` (and its group) with `mode`: munged refuses a key or folders that others may touch. */
function ownedBy(path, user, mode) {
  const uid = run('id', ['-u', user]).stdout.trim();
  const gid = run('id', ['-g', user]).stdout.trim();
  if (!uid || !gid) throw new Error(`there is no user ${user} to own ${path} (the munge package creates it)`);
  chownSync(path, Number(uid), Number(gid));
  chmodSync(path, mode);
}

function writeMungeKey() {
  if (existsSync(MUNGE_KEY)) return;
  mkdirSync(dirname(MUNGE_KEY), { recursive: true });
  writeFileSync(MUNGE_KEY, randomBytes(1024), { mode: 0o400 });
  ownedBy(MUNGE_KEY, 'munge', 0o400);
  say(`wrote a new munge key ${MUNGE_KEY}`);
}

// Settings that `scontrol reconfigure` does not apply to running daemons (Slurm 22.05's slurm.conf manual).
const RESTART_KEYS = (
  'NodeName AuthInfo AuthType SlurmdParameters SlurmctldHost SlurmUser SlurmdUser SelectType ' +
  'SelectTypeParameters PreemptType ProctrackType TaskPlugin'
).split(' ');
const needsRestart = (line) =>
  RESTART_KEYS.some((key) => line.startsWith(`${key}=`)) || /^\w*(Pid|Spool|StateSave|Port)\w*=/.test(line);

/**
 * Writes slurm.conf when absent or when ours and out of date; says what the daemons need for the change: nothing,
 * a reconfigure, or a restart. Someone else's slurm.conf is left untouched.
 */
function writeSlurmConf() {
  const wanted = slurmConfText();
  let changed = [];
  if (existsSync(SLURM_CONF)) {
    const current = readFileSync(SLURM_CONF, 'utf8');
    if (current === wanted) return 'none';
    if (!current.startsWith(MANAGED_MARKER)) {
      say(`${SLURM_CONF} was not written by this script: using it as it is`);
      return 'none';
    }
    const before = new Set(current.split('\n'));
    const after = new Set(wanted.split('\n'));
    changed = [...before, ...after].filter((line) => !(before.has(line) && after.has(line)));
  }
  mkdirSync(dirname(SLURM_CONF), { recursive: true });
  writeFileSync(SLURM_CONF, wanted);
  say(`wrote ${SLURM_CONF}`);
  return changed.some(needsRestart) ? 'restart' : 'reconfigure';
}

function pidRunning(pidFile, name) {
  if (!existsSync(pidFile)) return false;
  const pid = readFileSync(pidFile, 'utf8').trim();
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name;
  } catch {
    return false;
  }
}

function mungeWorks() {
  return run('sh', ['-c', 'munge -n | unmunge']).ok;
}

function startMunged() {
  if (mungeWorks()) return;
  for (const dir of ['/run/munge', '/var/log/munge', '/var/lib/munge']) {
    mkdirSync(dir, { recursive: true });
    ownedBy(dir, 'munge', dir === '/run/munge' ? 0o755 : 0o700);
  }
  // --force: a socket or pid file left by an earlier munged (a container restarted without a clean /run) would
  // stop it otherwise; none is running, since `munge -n | unmunge` failed.
  say('starting munged (as munge)');
  const started = run('runuser', ['-u', 'munge', '--', '/usr/sbin/munged', '--force']);
  if (!started.ok && !mungeWorks())
    throw new Error(`munged did not start: ${started.stderr.trim()}\n${tail(MUNGED_LOG)}`);
}

const DAEMONS = [
  ['slurmd', '/run/slurmd.pid'],
  ['slurmctld', '/run/slurmctld.pid'],
];

function stopDaemon(name, pidFile) {
  if (!pidRunning(pidFile, name)) return;
  say(`slurm.conf changed: stopping ${name} to restart it`);
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 20_000;
  while (pidRunning(pidFile, name) && Date.now() < deadline) sleep(200);
  if (pidRunning(pidFile, name)) throw new Error(`${name} (pid ${pid}) did not stop within 20 s of SIGTERM`);
}

/**
 * A slurmctld started on a state folder without job_state numbers jobs from 1 again, while the completion log keeps
 * the earlier controller's records under the same ids (a test reading job 1's records would get both): before such
 * a start the log is set aside as `jobcomp.log.<time>`. Returns the new name, or undefined when nothing was moved.
 */
export function setAsideStaleCompletionLog({
  stateDir = STATE_SAVE_DIR,
  logFile = JOB_COMPLETION_LOG,
  now = new Date(),
} = {}) {
  if (existsSync(join(stateDir, 'job_state')) || !existsSync(logFile)) return undefined;
  const aside = `${logFile}.${now.toISOString().replace(/[:.]/g, '-')}`;
  renameSync(logFile, aside);
  return aside;
}

function startSlurmDaemons(confChange) {
  for (const dir of [STATE_SAVE_DIR, '/var/spool/slurmd', SLURM_LOG_DIR]) mkdirSync(dir, { recursive: true });
  if (confChange === 'reconfigure' && pidRunning('/run/slurmctld.pid', 'slurmctld')) {
    say('slurm.conf changed: scontrol reconfigure');
    const reconfigured = run('scontrol', ['reconfigure']);
    if (!reconfigured.ok)
      throw new Error(`scontrol reconfigure failed: ${reconfigured.stderr.trim()}\n${daemonLogs()}`);
  }
  if (confChange === 'restart') {
    // Node and credential settings need a restart, not `scontrol reconfigure`. Jobs survive it: slurmctld keeps
    // them in its state folder and each job's slurmstepd outlives slurmd.
    for (const [name, pidFile] of DAEMONS) stopDaemon(name, pidFile);
  }
  if (!pidRunning('/run/slurmctld.pid', 'slurmctld')) {
    const aside = setAsideStaleCompletionLog();
    if (aside) say(`a fresh controller state numbers jobs from 1: set the old completion log aside as ${aside}`);
    say('starting slurmctld');
    const started = run('/usr/sbin/slurmctld', []);
    if (!started.ok) throw new Error(`slurmctld did not start: ${started.stderr.trim()}\n${daemonLogs()}`);
  }
  if (!pidRunning('/run/slurmd.pid', 'slurmd')) {
    say('starting slurmd');
    const started = run('/usr/sbin/slurmd', []);
    if (!started.ok) throw new Error(`slurmd did not start: ${started.stderr.trim()}\n${daemonLogs()}`);
  }
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Waits until every node is ready for jobs; a node left down or drained from an earlier run is resumed once. */
function waitUntilReady(timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let resumed = false;
  let states;
  while (Date.now() < deadline) {
    states = sinfoStates();
    if (states?.length && states.every((state) => READY_STATES.includes(state.replace(/[*~#!%$@^-]+$/, '')))) {
      return states;
    }
    if (states?.some((state) => /^(down|drain)/.test(state)) && !resumed && isRoot()) {
      run('scontrol', ['update', `NodeName=${shortHostname()}`, 'State=RESUME']);
      resumed = true;
    }
    sleep(1000);
  }
  throw new Error(
    `the Slurm node is not ready after ${timeoutMs / 1000} s (sinfo -h -o %T: ` +
      `${states ? states.join(', ') || 'no nodes' : 'slurmctld does not answer'})\n${daemonLogs()}`,
  );
}

/**
 * Brings the cluster up (see the header), or checks it when not root. Throws an Error whose message says what is
 * missing and how to fix it; returns `slurmClusterStatus()` when the node is ready.
 */
export function ensureSlurmCluster({ timeoutMs = READY_TIMEOUT_MS } = {}) {
  if (!isRoot()) {
    if (sinfoStates() === undefined) {
      throw new Error(
        'not root and no Slurm cluster answers (sinfo), so not installing one. Run `sudo node ' +
          'scripts/slurmCluster.mjs` or point the Slurm client tools at a cluster',
      );
    }
    waitUntilReady(timeoutMs);
    return slurmClusterStatus();
  }
  const missing = missingPackages();
  if (missing.length > 0) installPackages(missing);
  writeMungeKey();
  const confChange = writeSlurmConf();
  startMunged();
  startSlurmDaemons(confChange);
  waitUntilReady(timeoutMs);
  return slurmClusterStatus();
}

/** What a diagnosis needs: packages, daemons, the node's state, partitions and the queue. */
export function slurmClusterStatus() {
  const output = (command, args) => {
    const result = run(command, args, { timeout: 15_000 });
    return (result.ok ? result.stdout : `(failed: ${result.error ?? result.stderr.trim()})`).trim();
  };
  return {
    root: isRoot(),
    missingPackages: missingPackages(),
    slurmConf: existsSync(SLURM_CONF)
      ? readFileSync(SLURM_CONF, 'utf8').startsWith(MANAGED_MARKER)
        ? 'ours'
        : 'other'
      : 'absent',
    munge: mungeWorks(),
    slurmctld: pidRunning('/run/slurmctld.pid', 'slurmctld'),
    slurmd: pidRunning('/run/slurmd.pid', 'slurmd'),
    nodeStates: sinfoStates() ?? [],
    partitions: onPath('sinfo') ? output('sinfo', ['-h', '-o', '%P %a %l %D %T']) : '(no sinfo)',
    queue: onPath('squeue') ? output('squeue', ['-h', '-o', '%i %j %T %r %u']) : '(no squeue)',
  };
}

function describe(status) {
  const lines = Object.entries(status).map(([key, value]) => {
    const text = Array.isArray(value) ? value.join(', ') || '(none)' : String(value);
    return text.includes('\n') ? `  ${key}:\n${text.replace(/^/gm, '    ')}` : `  ${key}: ${text}`;
  });
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  try {
    if (process.argv[2] === 'status') {
      console.log(describe(slurmClusterStatus()));
    } else {
      const status = ensureSlurmCluster();
      say(`cluster ready in ${((Date.now() - started) / 1000).toFixed(1)} s: node ${status.nodeStates.join(', ')}`);
      console.log(describe(status));
    }
  } catch (error) {
    console.error(`[slurmCluster] ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
