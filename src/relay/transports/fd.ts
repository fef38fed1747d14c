/**
 * fd://N: a socket this process inherited (systemd socket activation passes the forwarder a
 * listening socket as fd 3; a launcher may pass a connected one). Any stream socket family.
 */
import { adoptConnected, adoptListener } from "./socket.ts";
import type { OnPipe, PipeListener } from "./types.ts";

export const dialFd = (fd: number, onPipe: OnPipe): Promise<void> => adoptConnected(fd, `fd://${fd}`, onPipe);
export const listenFd = (fd: number, onPipe: OnPipe): PipeListener => adoptListener(fd, `fd://${fd}`, onPipe);
