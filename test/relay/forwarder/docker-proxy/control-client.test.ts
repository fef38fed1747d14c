/** The docker-proxy's control-channel client against a real unix socket speaking the control-line protocol. */
import { afterEach, describe, expect, test } from "bun:test";
import { requestPublish } from "../../../../src/relay/forwarder/docker-proxy/control-client.ts";
import { parseProxyArgs } from "../../../../src/relay/forwarder/docker-proxy/flags.ts";
import { type Answer, type ControlServer, controlServer } from "../../../helpers/control-server.ts";
import { until } from "../../../helpers/until.ts";

const BINDING = {
  proto: "tcp",
  hostIp: "0.0.0.0",
  hostPort: 8080,
  containerIp: "172.17.0.2",
  containerPort: 80,
} as const;

let server: ControlServer;
const serve = (answer: Answer) => {
  server = controlServer(() => answer);
  return server;
};
afterEach(() => server?.stop());

describe("requestPublish", () => {
  test("sends exactly the publish request, holds the channel open, and ends it on end()", async () => {
    serve({ ok: true, id: "3f2a", ports: ["127.0.0.1:8080"] });
    // the parsed flags carry more than the request (control, listenFd): only the binding is sent
    const args = parseProxyArgs(
      [
        "-proto",
        "tcp",
        "-host-ip",
        "0.0.0.0",
        "-host-port",
        "8080",
        "-container-ip",
        "172.17.0.2",
        "-container-port",
        "80",
      ],
      { EDGEPORT_CONTROL: server.url },
    );
    const lease = await requestPublish(server.path, args);
    expect(lease.reply).toEqual({ ok: true, id: "3f2a", ports: ["127.0.0.1:8080"] });
    expect(server.requests).toEqual([{ op: "publish", ...BINDING }]);
    expect(server.open.size).toBe(1);
    lease.end();
    await lease.closed;
    await until(() => server.open.size === 0, "the server to see the channel end");
  });

  test("a refusal is a reply, not an error", async () => {
    serve({ ok: false, error: "port 8080 is in use" });
    const lease = await requestPublish(server.path, BINDING);
    expect(lease.reply).toEqual({ ok: false, error: "port 8080 is in use" });
    lease.end();
  });

  test.each<[string, Answer, string]>([
    [
      "something that is not a reply",
      { raw: "HTTP/1.1 400 Bad Request\r\n\r\n" },
      "the host answered something that is not a reply: HTTP/1.1 400",
    ],
    ["no answer in time", "silent", "no answer from the host within 0.2 s"],
  ])("%s rejects, and the connection is closed, not leaked", async (_name, answer, message) => {
    serve(answer);
    await expect(requestPublish(server.path, BINDING, 200)).rejects.toThrow(message);
    await until(() => server.open.size === 0 && server.closedCount() === 1, "the client to close its connection");
  });

  test("the host closing the channel before it answers rejects", async () => {
    server = controlServer(() => "silent");
    const pending = requestPublish(server.path, BINDING);
    await until(() => server.requests.length === 1, "the request");
    for (const s of server.open) s.end();
    await expect(pending).rejects.toThrow("the host closed the control channel");
  });

  test("no control socket: the error keeps its errno code", async () => {
    serve("silent");
    server.stop();
    const err = await requestPublish(server.path, BINDING).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe("ENOENT");
  });
});
