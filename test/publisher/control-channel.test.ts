/**
 * The host's control channels (what `edgeport docker-proxy` asks through the forwarder), on two real
 * sessions over an in-memory pipe, with a stand-in daemon: the requests and replies of the
 * control-line protocol, bad lines answered, and what a channel published released when it ends.
 */
import { afterEach, expect, test } from "bun:test";
import { createConsola } from "consola";
import { controlChannels } from "../../src/publisher/control-channel.ts";
import type { PortState } from "../../src/publisher/daemon.ts";
import { type ControlRequest, decodeReply, encodeLine, MAX_LINE } from "../../src/relay/control/protocol.ts";
import type { Channel } from "../../src/relay/mux/channel.ts";
import { CONTROL_DEST } from "../../src/relay/mux/constants.ts";
import { Session } from "../../src/relay/mux/session.ts";
import { FakeEndpoint, pipePair, until } from "../helpers/memory-pipe.ts";

const quiet = createConsola({ level: -999 });
const PUBLISH: ControlRequest = {
  op: "publish",
  proto: "tcp",
  hostIp: "0.0.0.0",
  hostPort: 8080,
  containerIp: "172.17.0.2",
  containerPort: 80,
};

const sessions: Session[] = [];
afterEach(() => {
  for (const s of sessions.splice(0)) s.close();
});

/** the host serving control channels for a stand-in daemon, and the VM end that opens them */
async function setup(refuse?: string) {
  const published: string[] = [];
  const released: string[] = [];
  const daemon = {
    async publishProxy(req: { hostPort: number }) {
      if (refuse) throw new Error(refuse);
      const id = `e${published.length + 1}`;
      published.push(id);
      return { id, ports: [{ host: `127.0.0.1:${req.hostPort}` } as PortState] };
    },
    async releaseProxy(id: string) {
      released.push(id);
    },
  };
  const [a, b] = pipePair();
  const serve = controlChannels(() => daemon, quiet);
  const host = new Session({ role: "host", onOpen: (ch, dest) => serve(host, ch, dest) });
  const vm = new Session({ role: "vm" });
  sessions.push(host, vm);
  a.handlers = host.handlers;
  b.handlers = vm.handlers;
  host.start(a);
  vm.start(b);
  await until(() => host.state === "ready" && vm.state === "ready", "ready");
  /** a control channel from the VM: send a line, read the replies */
  const open = () => {
    const ep = new FakeEndpoint();
    const ch: Channel = vm.open({ proto: "unix", path: CONTROL_DEST }, ep);
    const replies = () => ep.text().split("\n").filter(Boolean).map(decodeReply);
    const send = (line: string) => ch.localData(new TextEncoder().encode(line));
    return { ch, ep, replies, send };
  };
  return { open, published, released, vm };
}

test("publish answers with the entry and its host addresses; the channel ending releases it", async () => {
  const { open, published, released } = await setup();
  const c = open();
  c.send(encodeLine(PUBLISH));
  await until(() => c.replies().length === 1, "the reply");
  expect(c.replies()).toEqual([{ ok: true, id: "e1", ports: ["127.0.0.1:8080"] }]);
  expect(published).toEqual(["e1"]);
  c.ch.localEnd(); // the proxy goes away
  await until(() => released.length === 1, "the release");
  expect(released).toEqual(["e1"]);
});

test("unpublish releases what the channel published, and says ok", async () => {
  const { open, released } = await setup();
  const c = open();
  c.send(`${encodeLine(PUBLISH)}${encodeLine({ op: "unpublish" })}`);
  await until(() => c.replies().length === 2, "two replies");
  expect(c.replies()[1]).toEqual({ ok: true });
  expect(released).toEqual(["e1"]);
});

test("a refusal carries the daemon's reason", async () => {
  const { open } = await setup("port 8080 is in use");
  const c = open();
  c.send(encodeLine(PUBLISH));
  await until(() => c.replies().length === 1, "the reply");
  expect(c.replies()).toEqual([{ ok: false, error: "port 8080 is in use" }]);
});

test("bad lines are answered with the reason, and the channel still serves the next one", async () => {
  const { open, published } = await setup();
  const c = open();
  c.send('{"op":"publish","proto":"sctp"}\n');
  await until(() => c.replies().length === 1, "the first reply");
  c.send("x".repeat(MAX_LINE + 1)); // no newline yet: more than a request may hold is dropped
  await until(() => c.replies().length === 2, "the second reply");
  c.send(`\n${encodeLine(PUBLISH)}`);
  await until(() => c.replies().length === 3, "the third reply");
  const [bad, long, good] = c.replies();
  expect(bad).toMatchObject({ ok: false, error: expect.stringContaining("bad request: proto") });
  expect(long).toEqual({ ok: false, error: `request longer than ${MAX_LINE} bytes` });
  expect(good).toEqual({ ok: true, id: "e1", ports: ["127.0.0.1:8080"] });
  expect(published).toEqual(["e1"]);
});

test("the VM may open only control channels: any other destination is refused", async () => {
  const { open, published, vm } = await setup();
  const ep = new FakeEndpoint();
  vm.open({ proto: "unix", path: "/var/run/docker.sock" }, ep);
  await until(() => ep.resetCalled, "the refusal");
  const control = open(); // and the pipe still serves control channels
  control.send(encodeLine(PUBLISH));
  await until(() => control.replies().length === 1, "the control channel's reply");
  expect(published).toEqual(["e1"]);
});
