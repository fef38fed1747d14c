/**
 * The process's own figures for /metrics (the `process_*` families every Prometheus client
 * library exports): on Linux from /proc/self as client_golang reads them, elsewhere from what the
 * runtime gives (process.cpuUsage, memoryUsage, the time origin). A figure that cannot be read is
 * left out, never a guess.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fdLimit, openFdCount, readFdLimit } from "../shared/fd-limit.ts";

export interface ProcessStats {
  cpuSeconds: number;
  residentBytes: number;
  /** seconds since the epoch */
  startTimeSeconds: number;
  openFds?: number;
  maxFds?: number;
}

/** USER_HZ: the unit of /proc's tick counts, 100 on every Linux architecture edgeport builds for */
const USER_HZ = 100;

/** From /proc/self/stat (fields after the command name), /proc/self/status and /proc/stat. */
function linuxStats(): ProcessStats {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // f[0] is field 3 (state): utime 14, stime 15, starttime 22
  const ticks = (field: number) => Number(f[field - 3]);
  const btime = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1]);
  const rssKiB = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1]);
  const limits = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
  return {
    cpuSeconds: (ticks(14) + ticks(15)) / USER_HZ,
    residentBytes: rssKiB * 1024,
    startTimeSeconds: btime + ticks(22) / USER_HZ,
    // the listing's own descriptor is not counted
    openFds: readdirSync("/proc/self/fd").length - 1,
    ...(limits ? { maxFds: Number(limits[1]) } : {}),
  };
}

function runtimeStats(): ProcessStats {
  const cpu = process.cpuUsage();
  const open = openFdCount();
  const limit = fdLimit() ?? readFdLimit();
  return {
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    residentBytes: process.memoryUsage.rss(),
    startTimeSeconds: performance.timeOrigin / 1000,
    ...(open !== null ? { openFds: open } : {}),
    ...(limit ? { maxFds: limit.soft } : {}),
  };
}

export function processStats(platform: string = process.platform): ProcessStats {
  if (platform === "linux") {
    try {
      return linuxStats();
    } catch {
      // no /proc (a container without it): what the runtime gives
    }
  }
  return runtimeStats();
}
