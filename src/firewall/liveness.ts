/**
 * Does the instance that wrote a rule still run? kill(pid, 0) alone says only that some process
 * has that pid: after a reboot or a wrap-around a reused pid would keep a dead instance's rules
 * forever (issue 16, defect 9). So a rule's owner tag also records the process's start time
 * (/proc/PID/stat field 22, clock ticks since boot), and a pid whose start time differs is a
 * different process. Where there is no /proc (Windows, macOS) or the tag is an old one without a
 * start time, kill(pid, 0) alone decides, as before.
 */

export interface LivenessDeps {
  /** kill(pid, 0): throws ESRCH when no such process, EPERM when it exists but is not ours */
  kill(pid: number): void;
  /** a file's text, or null when it cannot be read */
  read(path: string): string | null;
}

/** Field 22 of /proc/PID/stat (starttime), or null. The comm field may hold spaces and parentheses. */
export function parseStartTime(stat: string): number | null {
  const end = stat.lastIndexOf(")");
  if (end < 0) return null;
  // after "pid (comm)" come fields 3 (state) onwards: starttime is the 20th of them
  const field = stat
    .slice(end + 1)
    .trim()
    .split(/\s+/)[19];
  return field && /^\d+$/.test(field) ? Number(field) : null;
}

export const processStartTime = (pid: number, deps: Pick<LivenessDeps, "read">): number | null => {
  const text = deps.read(`/proc/${pid}/stat`);
  return text === null ? null : parseStartTime(text);
};

/** Whether the process (pid, and start time when the tag has one) is the one that still runs. */
export function isAliveWith(deps: LivenessDeps, pid: number, start?: number): boolean {
  if (pid <= 0) return false;
  try {
    deps.kill(pid);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (start === undefined) return true;
  const now = processStartTime(pid, deps);
  return now === null || now === start;
}
