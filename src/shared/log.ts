import { type ConsolaInstance, createConsola, LogLevels, type LogObject, type LogType } from "consola";

/** The one consola instance. Areas take a scoped child: `log.withTag("relay")`. */
export const log: ConsolaInstance = createConsola({ level: LogLevels.info });

export const LOG_LEVELS = ["silent", "error", "warn", "info", "debug", "trace"] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const jsonReporter = {
  log(o: LogObject) {
    const [first, ...rest] = o.args;
    const line: Record<string, unknown> = {
      time: o.date.toISOString(),
      level: o.type,
      ...(o.tag ? { tag: o.tag } : {}),
      msg: first instanceof Error ? first.message : String(first ?? ""),
    };
    for (const extra of rest) {
      if (extra && typeof extra === "object" && !(extra instanceof Error)) Object.assign(line, extra);
      else if (extra instanceof Error) line.error = extra.message;
      else if (extra !== undefined) line.detail = String(extra);
    }
    process.stderr.write(`${JSON.stringify(line)}\n`);
  },
};

const textReporter = {
  log(o: LogObject) {
    const parts = o.args.map((a) =>
      a instanceof Error ? a.message : typeof a === "object" && a !== null ? JSON.stringify(a) : String(a),
    );
    const tag = o.tag ? ` [${o.tag}]` : "";
    process.stderr.write(`${o.date.toISOString()} ${o.type.toUpperCase()}${tag} ${parts.join(" ")}\n`);
  },
};

/** The last log lines (any tag), for the control API's debug view. */
const RECENT_MAX = 300;
const recent: { time: string; level: string; tag?: string; msg: string }[] = [];
const recentReporter = {
  log(o: LogObject) {
    const [first] = o.args;
    recent.push({
      time: o.date.toISOString(),
      level: o.type,
      ...(o.tag ? { tag: o.tag } : {}),
      msg: first instanceof Error ? first.message : String(first ?? ""),
    });
    if (recent.length > RECENT_MAX) recent.splice(0, recent.length - RECENT_MAX);
  },
};
export const recentLog = (): readonly { time: string; level: string; tag?: string; msg: string }[] => recent;

let currentFormat: LogFormat = "text";
/** The --log-format in force (fatal errors follow it). */
export const logFormat = (): LogFormat => currentFormat;

export function configureLog(level: LogLevelName, format: LogFormat): void {
  currentFormat = format;
  const levels: Record<LogLevelName, number> = {
    silent: LogLevels.silent,
    error: LogLevels.error,
    warn: LogLevels.warn,
    info: LogLevels.info,
    debug: LogLevels.debug,
    trace: LogLevels.trace,
  };
  log.level = levels[level];
  log.setReporters([format === "json" ? jsonReporter : textReporter, recentReporter]);
}
configureLog("info", "text");

/** A string from the other side (VM, engine, client) made safe for a log line: no control bytes, bounded. */
export function safe(s: string, max = 200): string {
  const cleaned = s.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control bytes is the point
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return cleaned.length > max ? `${cleaned.slice(0, max)}...(${cleaned.length - max} more)` : cleaned;
}

export type { LogType };
