/**
 * fd://N: a socket this process inherited (systemd socket activation passes the forwarder a
 * listening socket as fd 3; a launcher may pass a connected one). Any stream socket family.
 */
import { adoptConnected, adoptListener } from "./socket.ts";
import type { OnActivity, OnPipe, PipeListener } from "./types.ts";

export const dialFd = (fd: number, onPipe: OnPipe, activity: OnActivity): Promise<void> =>
  adoptConnected(fd, `fd://${fd}`, onPipe, activity);
export const listenFd = (fd: number, onPipe: OnPipe, activity: OnActivity): PipeListener =>
  adoptListener(fd, `fd://${fd}`, onPipe, activity);
