import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { growSocketBuffers, PIPE_SOCKET_BUFFER, pipeBufferSetting } from "../../../src/relay/transports/sockbuf.ts";
import { until } from "../../helpers/until.ts";

/** Bun's sockets have a public fd that its type declarations do not list. */
const fdOf = (s: unknown): number | undefined => (s as { fd?: number }).fd;

describe("pipe socket buffers", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  async function pair() {
    const dir = mkdtempSync(join(tmpdir(), "sockbuf-"));
    dirs.push(dir);
    const path = join(dir, "s.sock");
    const server: { accepted?: unknown } = {};
    const srv = Bun.listen({ unix: path, socket: { open: (s) => void (server.accepted = s), data() {} } });
    const client = await Bun.connect({ unix: path, socket: { data() {} } });
    await until(() => server.accepted !== undefined, "the server to accept");
    return { srv, client, accepted: server.accepted as { fd?: number } };
  }

  test("a unix socket gets the asked size both ways on both ends (Linux reports twice what was set)", async () => {
    const { srv, client, accepted } = await pair();
    try {
      const a = growSocketBuffers(fdOf(client), PIPE_SOCKET_BUFFER);
      const b = growSocketBuffers(fdOf(accepted), PIPE_SOCKET_BUFFER);
      expect(a).not.toBeNull();
      expect(b).not.toBeNull();
      // as root the FORCE variants pass net.core.wmem_max/rmem_max, so the full size is granted
      for (const r of [a!, b!]) {
        expect(r.send).toBe(2 * PIPE_SOCKET_BUFFER);
        expect(r.receive).toBe(2 * PIPE_SOCKET_BUFFER);
      }
      // and a smaller size really is applied, not just reported
      expect(growSocketBuffers(fdOf(client), 100_000)).toEqual({ send: 200_000, receive: 200_000 });
    } finally {
      client.end();
      srv.stop(true);
    }
  });

  test("bytes through a unix socket with grown buffers arrive whole and in order (4 MiB, checksummed)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sockbuf-"));
    dirs.push(dir);
    const path = join(dir, "s.sock");
    const payload = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 2654435761) >>> 24);
    const want = new Bun.CryptoHasher("sha256").update(payload).digest("hex");
    const got = new Bun.CryptoHasher("sha256");
    let n = 0;
    const done = Promise.withResolvers<void>();
    const srv = Bun.listen({
      unix: path,
      socket: {
        open: (s) => void growSocketBuffers(fdOf(s), PIPE_SOCKET_BUFFER),
        data(_s, d) {
          got.update(d);
          n += d.length;
          if (n === payload.length) done.resolve();
        },
      },
    });
    let off = 0;
    const client = await Bun.connect({
      unix: path,
      socket: {
        drain(s) {
          while (off < payload.length) {
            const w = s.write(payload.subarray(off));
            if (w <= 0) return;
            off += w;
          }
        },
        data() {},
      },
    });
    growSocketBuffers(fdOf(client), PIPE_SOCKET_BUFFER);
    off += client.write(payload);
    while (off < payload.length) {
      await Bun.sleep(1);
      const w = client.write(payload.subarray(off));
      if (w > 0) off += w;
    }
    await done.promise;
    expect(got.digest("hex")).toBe(want);
    client.end();
    srv.stop(true);
  });

  test("no fd, a closed fd, or 0 bytes: nothing is done and nothing throws", () => {
    expect(growSocketBuffers(undefined, PIPE_SOCKET_BUFFER)).toBeNull();
    expect(growSocketBuffers(-1, PIPE_SOCKET_BUFFER)).toBeNull();
    expect(growSocketBuffers(5, 0)).toBeNull();
  });

  test("EDGEPORT_PIPE_BUFFER: unset means 4 MiB, 0 the kernel's default, junk is an error naming it", () => {
    expect(pipeBufferSetting(undefined)).toBe(PIPE_SOCKET_BUFFER);
    expect(pipeBufferSetting("")).toBe(PIPE_SOCKET_BUFFER);
    expect(pipeBufferSetting("0")).toBe(0);
    expect(pipeBufferSetting("1048576")).toBe(1048576);
    for (const bad of ["abc", "-1", "1e6", "1.5", "99999999999"]) {
      expect(() => pipeBufferSetting(bad)).toThrow(`EDGEPORT_PIPE_BUFFER=${JSON.stringify(bad)}`);
    }
  });
});
