/**
 * A unix-socket proxy in front of the engine's socket, so a test can make the engine unreachable
 * (and bring it back) while dockerd and its containers keep running.
 */
import { existsSync, unlinkSync } from "node:fs";
import type { Socket, UnixSocketListener } from "bun";

interface Side {
  peer: Socket<Side> | null;
  pending: Uint8Array[];
}

export class UnixProxy {
  private listener: UnixSocketListener<Side> | null = null;
  private readonly sockets = new Set<Socket<Side>>();
  /** the paths of the HTTP requests clients sent through, in order ("/v1.41/containers/json") */
  readonly requests: string[] = [];
  constructor(
    readonly path: string,
    readonly target: string,
  ) {}

  start(): void {
    if (existsSync(this.path)) unlinkSync(this.path);
    const sockets = this.sockets;
    const target = this.target;
    const requests = this.requests;
    const relay = {
      data(s: Socket<Side>, d: Uint8Array) {
        if (s.data.peer) s.data.peer.write(d);
        else s.data.pending.push(d);
      },
      close(s: Socket<Side>) {
        sockets.delete(s);
        s.data.peer?.end();
      },
      error() {},
    };
    this.listener = Bun.listen<Side>({
      unix: this.path,
      socket: {
        ...relay,
        data(client, d) {
          for (const m of Buffer.from(d)
            .toString("latin1")
            .matchAll(/^[A-Z]+ (\S+) HTTP\/1\.[01]\r$/gm))
            requests.push(m[1]!);
          relay.data(client, d);
        },
        open(client) {
          client.data = { peer: null, pending: [] };
          sockets.add(client);
          Bun.connect<Side>({
            unix: target,
            data: { peer: client, pending: [] },
            socket: {
              ...relay,
              open(up) {
                sockets.add(up);
                client.data.peer = up;
                for (const d of client.data.pending) up.write(d);
              },
            },
          }).catch(() => client.end());
        },
      },
    });
  }

  /** Stops listening and cuts every proxied connection. */
  stop(): void {
    this.listener?.stop(true);
    this.listener = null;
    for (const s of this.sockets) s.terminate();
    this.sockets.clear();
    if (existsSync(this.path)) unlinkSync(this.path);
  }
}
