/**
 * The stop signal main.ts aborts on SIGINT/SIGTERM; the rest of what a command needs of the
 * process comes as its ProcessContext (src/shared/process-context.ts, citty's `data`).
 */
export const stop = new AbortController();
export { contextOf, type ProcessContext } from "../shared/process-context.ts";
