/**
 * vsock://CID:PORT (the host connects to a VM) and vsock://any:PORT (the forwarder listens in the
 * VM): AF_VSOCK stream sockets, made through libc (raw-socket.ts) and adopted by Bun by their fd.
 * How each VMM exposes vsock is in docs/operations.md.
 */

import { closeRaw, rawConnect, rawListen } from "./raw-socket.ts";
import { adoptConnected, adoptListener } from "./socket.ts";
import type { OnActivity, OnPipe, PipeListener } from "./types.ts";
import { formatTransportUrl, type TransportUrl } from "./url.ts";

export const AF_VSOCK = 40;
/** VMADDR_CID_ANY: listen on every CID this machine has */
export const VMADDR_CID_ANY = 0xffffffff;
const CONNECT_TIMEOUT_MS = 5_000;

type VsockUrl = Extract<TransportUrl, { kind: "vsock" }>;

/** struct sockaddr_vm: family (u16), reserved (u16), port (u32), cid (u32), flags (u8), zero[3]. */
export function sockaddrVm(cid: number, port: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_VSOCK, true);
  v.setUint32(4, port, true);
  v.setUint32(8, cid, true);
  return b;
}

export async function dialVsock(u: VsockUrl, onPipe: OnPipe, activity: OnActivity): Promise<void> {
  const description = formatTransportUrl(u);
  const fd = await rawConnect(AF_VSOCK, sockaddrVm(u.cid, u.port), description, CONNECT_TIMEOUT_MS);
  await adoptConnected(fd, description, onPipe, activity).catch((e) => {
    closeRaw(fd);
    throw e;
  });
}

export function listenVsock(u: VsockUrl, onPipe: OnPipe, activity: OnActivity): PipeListener {
  const description = formatTransportUrl(u);
  const fd = rawListen(AF_VSOCK, sockaddrVm(u.cid, u.port), description);
  try {
    return adoptListener(fd, description, onPipe, activity);
  } catch (e) {
    closeRaw(fd);
    throw e;
  }
}
