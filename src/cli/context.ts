/** Process-wide context handed from main.ts to the commands: the stop signal. */
export const stop = new AbortController();
