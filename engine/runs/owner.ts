/**
 * Which process owns a running run. A pid alone is not enough: after a reboot or in a container the pid of a
 * dead run is soon another live process, and the run would read as running (RUN_BUSY) for good. The owner's
 * start time (Linux: /proc/<pid>/stat field 22, clock ticks since boot) is recorded beside its pid; a live
 * pid with another start time is another process. Where /proc is missing the pid alone decides.
 */
import * as fs from 'node:fs';

/** The start time of process `pid`, or undefined where it cannot be read (not Linux, process gone). */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command) is in parentheses and may hold spaces: count fields after its closing one.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = rest[19]; // field 3 is index 0, so field 22 is index 19
    return start && /^\d+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/** This process's start time, read once. */
let own: string | undefined | null = null;
export function ownStartTime(): string | undefined {
  if (own === null) own = processStartTime(process.pid);
  return own;
}

export function isPidAlive(pid: number | undefined): boolean {
  if (!pid || !Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process recorded as a run's owner (pid, and start time when recorded) still runs. */
export function isOwnerAlive(pid: number | undefined, startTime: string | undefined): boolean {
  if (!isPidAlive(pid)) return false;
  if (startTime === undefined) return true;
  const now = processStartTime(pid!);
  return now === undefined || now === startTime;
}
