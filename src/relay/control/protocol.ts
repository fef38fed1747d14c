/**
 * The control-line protocol: what `edgeport docker-proxy` in the VM asks the host daemon over a
 * control channel (the forwarder's VM-local control socket, relayed over the pipe to
 * CONTROL_DEST), one JSON object a line, and what the host answers:
 *
 *   -> {"op":"publish","proto":"tcp","hostIp":"0.0.0.0","hostPort":8080,"containerIp":"172.17.0.2","containerPort":80}
 *   <- {"ok":true,"id":"3f2a...","ports":["127.0.0.1:8080","[::1]:8080"]}   or   {"ok":false,"error":"..."}
 *   -> {"op":"unpublish"}   (or simply closing the channel)
 *   <- {"ok":true}
 *
 * The one definition both ends use: the host's control channel (src/publisher/control-channel.ts),
 * the proxy's client (src/relay/forwarder/docker-proxy/control-client.ts) and the forwarder's own
 * answer when the pipe is down. Pure: no IO, no logging.
 */
import { z } from "zod";
import { EdgeportError } from "../../shared/errors.ts";

/** The longest request line the host reads; longer ones are answered with an error and dropped. */
export const MAX_LINE = 4096;

export const PublishRequest = z.strictObject({
  op: z.literal("publish"),
  proto: z.enum(["tcp", "udp"]),
  hostIp: z.string().max(64),
  hostPort: z.number().int().min(1).max(65535),
  containerIp: z.string().max(64),
  containerPort: z.number().int().min(1).max(65535),
});
export type PublishRequest = z.infer<typeof PublishRequest>;

export const ControlRequest = z.discriminatedUnion("op", [
  PublishRequest,
  z.strictObject({ op: z.literal("unpublish") }),
]);
export type ControlRequest = z.infer<typeof ControlRequest>;

export const ControlReply = z.discriminatedUnion("ok", [
  z.object({
    ok: z.literal(true),
    /** the published entry (absent in the answer to unpublish) */
    id: z.string().optional(),
    /** the host addresses it listens on */
    ports: z.array(z.string()).optional(),
  }),
  z.object({ ok: z.literal(false), error: z.string() }),
]);
export type ControlReply = z.infer<typeof ControlReply>;

/** One message as the line that carries it. */
export const encodeLine = (msg: ControlRequest | ControlReply): string => `${JSON.stringify(msg)}\n`;

const parseJson = (line: string): unknown => {
  try {
    return JSON.parse(line);
  } catch (e) {
    return new EdgeportError("E_PROTOCOL", (e as Error).message);
  }
};

const issues = (e: z.ZodError): string => e.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ");

/** A request line (without its newline); throws E_PROTOCOL "bad request: ..." saying what is wrong. */
export function decodeRequest(line: string): ControlRequest {
  const json = parseJson(line);
  if (json instanceof EdgeportError) throw new EdgeportError("E_PROTOCOL", `bad request: ${json.message}`);
  const r = ControlRequest.safeParse(json);
  if (!r.success) throw new EdgeportError("E_PROTOCOL", `bad request: ${issues(r.error)}`);
  return r.data;
}

/** A reply line (without its newline); throws E_PROTOCOL when the host answered something else. */
export function decodeReply(line: string): ControlReply {
  const json = parseJson(line);
  const r = json instanceof EdgeportError ? null : ControlReply.safeParse(json);
  if (!r?.success)
    throw new EdgeportError("E_PROTOCOL", `the host answered something that is not a reply: ${line.slice(0, 80)}`);
  return r.data;
}

/**
 * Splits a byte stream into lines (UTF-8 kept whole across chunks). `push` returns the complete
 * lines so far, without their newlines; `overflow` is set when more than `max` characters came
 * without a newline, and what was buffered is dropped.
 */
export function createLineSplitter(max = MAX_LINE) {
  const decoder = new TextDecoder();
  let buf = "";
  return {
    push(chunk: Uint8Array): { lines: string[]; overflow: boolean } {
      buf += decoder.decode(chunk, { stream: true });
      let overflow = false;
      if (buf.length > max && !buf.includes("\n")) {
        overflow = true;
        buf = "";
      }
      const lines: string[] = [];
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      return { lines, overflow };
    },
  };
}
