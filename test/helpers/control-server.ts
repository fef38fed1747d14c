/**
 * A stand-in for the forwarder's VM-local control socket, on a real unix socket: it reads the
 * docker-proxy's request lines and answers as the test says (a reply, raw text, or nothing).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "bun";
import {
  type ControlReply,
  type ControlRequest,
  createLineSplitter,
  decodeRequest,
  encodeLine,
} from "../../src/relay/control/protocol.ts";

/** what the server does with a request: answer with a reply, write raw text, or stay silent */
export type Answer = ControlReply | { raw: string } | "silent";

export interface ControlServer {
  path: string;
  url: string;
  /** every request line received, decoded, in order */
  requests: ControlRequest[];
  /** connections open now */
  open: Set<Socket<undefined>>;
  /** connections that have closed */
  closedCount: () => number;
  stop(): void;
}

export function controlServer(answer: (req: ControlRequest, n: number) => Answer): ControlServer {
  const dir = mkdtempSync("/tmp/edgeport-ctl-");
  const path = join(dir, "control.sock");
  const requests: ControlRequest[] = [];
  const open = new Set<Socket<undefined>>();
  let closed = 0;
  const splitters = new WeakMap<Socket<undefined>, ReturnType<typeof createLineSplitter>>();
  const server = Bun.listen({
    unix: path,
    allowHalfOpen: true,
    socket: {
      open(s) {
        open.add(s);
        splitters.set(s, createLineSplitter());
      },
      data(s, d) {
        for (const line of splitters.get(s)?.push(d).lines ?? []) {
          const req = decodeRequest(line);
          requests.push(req);
          const a = answer(req, requests.length - 1);
          if (a === "silent") continue;
          s.write("raw" in a ? a.raw : encodeLine(a));
        }
      },
      end(s) {
        s.end();
      },
      close(s) {
        if (open.delete(s)) closed++;
      },
      error() {},
    },
  });
  return {
    path,
    url: `unix://${path}`,
    requests,
    open,
    closedCount: () => closed,
    stop() {
      server.stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
