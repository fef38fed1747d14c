/** The control-line protocol between `edgeport docker-proxy` and the host daemon: golden lines both ways. */
import { describe, expect, test } from "bun:test";
import {
  type ControlReply,
  type ControlRequest,
  createLineSplitter,
  decodeReply,
  decodeRequest,
  encodeLine,
  MAX_LINE,
} from "../../../src/relay/control/protocol.ts";
import { isEdgeportError } from "../../../src/shared/errors.ts";

const PUBLISH: ControlRequest = {
  op: "publish",
  proto: "tcp",
  hostIp: "0.0.0.0",
  hostPort: 8080,
  containerIp: "172.17.0.2",
  containerPort: 80,
};

describe("golden lines", () => {
  test.each<[string, ControlRequest, string]>([
    [
      "publish",
      PUBLISH,
      '{"op":"publish","proto":"tcp","hostIp":"0.0.0.0","hostPort":8080,"containerIp":"172.17.0.2","containerPort":80}\n',
    ],
    ["unpublish", { op: "unpublish" }, '{"op":"unpublish"}\n'],
  ])("request %s", (_name, msg, line) => {
    expect(encodeLine(msg)).toBe(line);
    expect(decodeRequest(line.slice(0, -1))).toEqual(msg);
  });

  test.each<[string, ControlReply, string]>([
    [
      "published",
      { ok: true, id: "3f2a", ports: ["127.0.0.1:8080", "[::1]:8080"] },
      '{"ok":true,"id":"3f2a","ports":["127.0.0.1:8080","[::1]:8080"]}\n',
    ],
    ["unpublished", { ok: true }, '{"ok":true}\n'],
    ["refused", { ok: false, error: "port 8080 is in use" }, '{"ok":false,"error":"port 8080 is in use"}\n'],
    // the forwarder's own answer when no pipe is up
    [
      "pipe down",
      { ok: false, error: "the pipe to the host is down" },
      '{"ok":false,"error":"the pipe to the host is down"}\n',
    ],
  ])("reply %s", (_name, msg, line) => {
    expect(encodeLine(msg)).toBe(line);
    expect(decodeReply(line.slice(0, -1))).toEqual(msg);
  });
});

describe("bad lines", () => {
  /** the message of the E_PROTOCOL error `f` throws */
  const rejected = (f: () => unknown): string => {
    let err: unknown;
    try {
      f();
    } catch (e) {
      err = e;
    }
    expect(isEdgeportError(err, "E_PROTOCOL")).toBe(true);
    return (err as Error).message;
  };

  test.each<[string, string, string]>([
    ["not JSON", "hello", 'bad request: JSON Parse error: Unexpected identifier "hello"'],
    [
      "an unknown op",
      '{"op":"reboot"}',
      "bad request: op Invalid discriminator value. Expected 'publish' | 'unpublish'",
    ],
    ["a port out of range", JSON.stringify({ ...PUBLISH, hostPort: 65536 }), "bad request: hostPort Too big"],
    ["an unknown field", JSON.stringify({ ...PUBLISH, listenFd: true }), "bad request:  Unrecognized key"],
    ["sctp", JSON.stringify({ ...PUBLISH, proto: "sctp" }), "bad request: proto Invalid option"],
  ])("a request with %s is refused, saying why", (_name, line, message) => {
    expect(rejected(() => decodeRequest(line))).toStartWith(message);
  });

  test.each([
    ["not JSON", "<html>"],
    ["no ok", '{"id":"x"}'],
    ["a refusal without its error", '{"ok":false}'],
    ["ports that are not strings", '{"ok":true,"ports":[8080]}'],
  ])("a reply with %s is not a reply", (_name, line) => {
    expect(rejected(() => decodeReply(line))).toBe(`the host answered something that is not a reply: ${line}`);
  });

  test("a long reply is quoted to 80 characters", () => {
    expect(rejected(() => decodeReply("x".repeat(200)))).toBe(
      `the host answered something that is not a reply: ${"x".repeat(80)}`,
    );
  });
});

describe("line splitter", () => {
  const bytes = (s: string) => new TextEncoder().encode(s);

  test("lines across chunks, several in one chunk, a partial one kept", () => {
    const split = createLineSplitter();
    expect(split.push(bytes('{"op":'))).toEqual({ lines: [], overflow: false });
    expect(split.push(bytes('"unpublish"}\n{"a":1}\n{"b"'))).toEqual({
      lines: ['{"op":"unpublish"}', '{"a":1}'],
      overflow: false,
    });
    expect(split.push(bytes(":2}\n"))).toEqual({ lines: ['{"b":2}'], overflow: false });
  });

  test("a UTF-8 character split between chunks stays whole", () => {
    const split = createLineSplitter();
    const line = bytes('{"ok":false,"error":"no \u00e9\u20ac"}\n');
    const cut = line.indexOf(0xe2) + 1; // inside the three bytes of the euro sign
    expect(split.push(line.subarray(0, cut)).lines).toEqual([]);
    expect(split.push(line.subarray(cut)).lines).toEqual(['{"ok":false,"error":"no \u00e9\u20ac"}']);
  });

  test(`more than ${MAX_LINE} characters without a newline overflow and are dropped; the next line is read`, () => {
    const split = createLineSplitter();
    expect(split.push(bytes("x".repeat(MAX_LINE)))).toEqual({ lines: [], overflow: false });
    expect(split.push(bytes("x"))).toEqual({ lines: [], overflow: true });
    expect(split.push(bytes('{"op":"unpublish"}\n'))).toEqual({ lines: ['{"op":"unpublish"}'], overflow: false });
  });
});
