/**
 * A one-node Slurm cluster on localhost for the Slurm executor's integration test: munge (started only when not
 * already answering), slurmctld and slurmd with a minimal slurm.conf in a temporary folder (no accounting
 * daemon), on ports of their own so nothing else on the machine is disturbed. Client commands find it through
 * SLURM_CONF, which `start` sets in this process's environment (children inherit it). `stop` ends the daemons
 * it started, by the pids in their pid files, waits for them to exit, and removes the folder.
 *
 * Where it cannot start (not root, Slurm or munge not installed, a daemon that does not come up), `start`
 * returns the reason instead of throwing, so the test can say why it skips.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface SlurmCluster {
  dir: string;
  conf: string;
  stop(): Promise<void>;
}

function which(cmd: string): string | null {
  for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const f = path.join(d, cmd);
    if (fs.existsSync(f)) return f;
  }
  return null;
}

function mungeWorks(): boolean {
  const r = spawnSync('sh', ['-c', 'munge -n | unmunge'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 && /STATUS:\s+Success/.test(r.stdout);
}

function readPid(file: string): number | null {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

function kill(pid: number | null, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (!pid) return;
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

function alive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The last lines of a daemon's log, for a skip message (the folder is removed afterwards). */
function logTail(file: string): string {
  try {
    return `(${file}: ${fs.readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ')})`;
  } catch {
    return '';
  }
}

async function waitFor(what: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (what()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return what();
}

export async function startSlurmCluster(): Promise<SlurmCluster | { skip: string }> {
  if (process.getuid?.() !== 0) return { skip: 'not root: slurmd and munged need root here' };
  for (const cmd of ['slurmctld', 'slurmd', 'sbatch', 'squeue', 'scontrol', 'munged', 'munge', 'unmunge']) {
    if (!which(cmd)) return { skip: `${cmd} is not installed (Debian: apt-get install slurm-wlm munge; CI: scripts/setup-slurm.sh)` };
  }
  // munge: a key, its folders owned by munge, the daemon (unless one already answers).
  let mungePid: number | null = null;
  if (!mungeWorks()) {
    try {
      if (!fs.existsSync('/etc/munge/munge.key')) {
        fs.mkdirSync('/etc/munge', { recursive: true });
        fs.writeFileSync('/etc/munge/munge.key', Buffer.from(Array.from({ length: 1024 }, () => Math.floor(Math.random() * 256))), { mode: 0o400 });
      }
      for (const d of ['/run/munge', '/var/log/munge', '/var/lib/munge']) fs.mkdirSync(d, { recursive: true });
      execFileSync('chown', ['-R', 'munge:munge', '/etc/munge', '/run/munge', '/var/log/munge', '/var/lib/munge']);
      execFileSync('runuser', ['-u', 'munge', '--', which('munged')!]);
    } catch (e) {
      return { skip: `munged did not start: ${(e as Error).message.split('\n')[0]}` };
    }
    if (!(await waitFor(mungeWorks, 10_000))) return { skip: 'munged started but `munge -n | unmunge` does not succeed' };
    mungePid = readPid('/run/munge/munged.pid');
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'advmoe-slurm-'));
  const host = os.hostname().split('.')[0];
  const cpus = os.cpus().length;
  const memMb = Math.max(512, Math.floor((os.totalmem() / 1024 ** 2) * 0.9));
  // Ports of our own: a cluster another process runs on the default ports is left alone.
  const base = 17000 + (process.pid % 1000) * 2;
  const conf = path.join(dir, 'slurm.conf');
  fs.mkdirSync(path.join(dir, 'state'));
  fs.mkdirSync(path.join(dir, 'spool'));
  fs.writeFileSync(
    conf,
    [
      'ClusterName=advmoetest',
      `SlurmctldHost=${host}`,
      `SlurmctldPort=${base}`,
      `SlurmdPort=${base + 1}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/slurmctld.log`,
      `SlurmdLogFile=${dir}/slurmd.log`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SchedulerType=sched/backfill',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_CPU',
      'MpiDefault=none',
      'ReturnToService=2',
      // scancel's SIGTERM, then SIGKILL after this many seconds: time for the run's clean stop.
      'KillWait=30',
      `NodeName=${host} CPUs=${cpus} RealMemory=${memMb} State=UNKNOWN`,
      `PartitionName=main Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
  );
  process.env.SLURM_CONF = conf;
  const stop = async () => {
    const pids = [readPid(path.join(dir, 'slurmd.pid')), readPid(path.join(dir, 'slurmctld.pid')), mungePid];
    for (const pid of pids) kill(pid);
    // slurmctld saves its state into the folder as it shuts down: removing the folder before it has exited
    // races that write (ENOTEMPTY). Wait for the daemons, then kill what is still there.
    if (!(await waitFor(() => pids.every((pid) => !alive(pid)), 15_000))) for (const pid of pids) kill(pid, 'SIGKILL');
    await waitFor(() => pids.every((pid) => !alive(pid)), 5_000);
    delete process.env.SLURM_CONF;
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  };
  const env = { ...process.env, SLURM_CONF: conf };
  for (const [daemon, args] of [
    ['slurmctld', ['-f', conf]],
    ['slurmd', ['-f', conf]],
  ] as const) {
    const r = spawnSync(which(daemon)!, args, { env, encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) {
      const why = `${daemon} did not start (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').pop()} ${logTail(path.join(dir, `${daemon}.log`))}`;
      await stop();
      return { skip: why };
    }
  }
  const idle = await waitFor(() => {
    const r = spawnSync('sinfo', ['-h', '-o', '%t'], { env, encoding: 'utf8', timeout: 10_000 });
    return r.status === 0 && /^idle/m.test(r.stdout);
  }, 30_000);
  if (!idle) {
    const why = `the node did not become idle within 30 s ${logTail(path.join(dir, 'slurmd.log'))}`;
    await stop();
    return { skip: why };
  }
  return { dir, conf, stop };
}
