/** Protocol constants of the vpnkit multiplexer wire format and edgeport's extensions. */

export const MAGIC_TEXT = "https://github.com/moby/vpnkit multiplexer protocol\n";
export const MAGIC = new TextEncoder().encode(MAGIC_TEXT);
export const HANDSHAKE_FIXED_LEN = MAGIC.length + 2; // magic + u16 payload length
export const MAX_HANDSHAKE_PAYLOAD = 4096;

// vpnkit commands
export const CMD_OPEN = 1;
export const CMD_CLOSE = 2;
export const CMD_SHUTDOWN = 3;
export const CMD_DATA = 4;
export const CMD_WINDOW = 5;
// edgeport extensions: sent only to a peer that negotiated them in the handshake
export const CMD_OPEN_RESULT = 0x81;
export const CMD_PING = 0x82;
export const CMD_PONG = 0x83;
export const CMD_AUTH = 0x84;

export const CONN_DEDICATED = 1; // declared by vpnkit, never implemented: never sent
export const CONN_MULTIPLEXED = 2;

export const PROTO_TCP = 1;
export const PROTO_UDP = 2;
export const PROTO_UNIX = 3;

export const HDR_BASE = 7; // hdrlen u16 + command u8 + id u32
export const HDR_DATA = 11;
export const HDR_WINDOW = 15;
export const HDR_PING = 15;
export const AUTH_MAC_LEN = 32;

/** vpnkit's window, used with every plain vpnkit peer. */
export const VPNKIT_WINDOW = 64 * 1024;
/** Default receive window between two edgeport ends (see docs/protocol.md for the measurement). */
export const EDGEPORT_WINDOW = 1024 * 1024;
/** What an edgeport channel's window may grow to by default (`--window-max`): see window.ts. */
export const EDGEPORT_WINDOW_MAX = 8 * 1024 * 1024;
/** What all channels of one pipe may grow their windows by together. */
export const WINDOW_GROWTH_BUDGET = 64 * 1024 * 1024;
export const MIN_WINDOW = 16 * 1024;
export const MAX_WINDOW = 16 * 1024 * 1024;
/** Largest Data payload edgeport sends in one frame. */
export const MAX_SEND_FRAME = 256 * 1024;
/** Largest Data payload edgeport accepts in one frame (credit bounds it further). */
export const MAX_RECV_FRAME = MAX_WINDOW;
/** A channel pauses reading its local socket past this many unsent bytes. */
export const SEND_QUEUE_HIGH = 256 * 1024;
/** A received piece holding a chunk this many times its size is copied before it is queued. */
export const PIN_RATIO = 16;

/** Open-result status codes (extension). */
export const OPEN_OK = 0;
export const OPEN_REFUSED = 1;
export const OPEN_UNREACHABLE = 2;
export const OPEN_FORBIDDEN = 3;
export const OPEN_TIMEOUT = 4;
export const OPEN_ERROR = 5;
export const OPEN_STATUS_NAMES: Record<number, string> = {
  [OPEN_OK]: "ok",
  [OPEN_REFUSED]: "refused",
  [OPEN_UNREACHABLE]: "unreachable",
  [OPEN_FORBIDDEN]: "forbidden",
  [OPEN_TIMEOUT]: "timeout",
  [OPEN_ERROR]: "error",
};
export const MAX_REASON_LEN = 512;

/** Extension names negotiated in the handshake payload. */
export const EXT_OPEN_RESULT = "open-result";
export const EXT_PING = "ping";
export const EXT_AUTH = "auth";
/** the VM reports its own listeners on a channel to LISTENERS_DEST (src/relay/control/listeners.ts) */
export const EXT_LISTENERS = "listeners";
export const EXTENSIONS = [EXT_OPEN_RESULT, EXT_PING, EXT_AUTH, EXT_LISTENERS] as const;

/** The Unix-path destination of channels the VM opens to the host's control service (docker-proxy requests). */
export const CONTROL_DEST = "edgeport:control";
/** The Unix-path destination of the channel the VM reports its listeners on (the `listeners` extension). */
export const LISTENERS_DEST = "edgeport:listeners";
