/**
 * The docker-proxy drop-in: dockerd in the test bed runs with userland-proxy-path pointing at the
 * compiled edgeport binary itself. Each `docker run -p` makes dockerd start it with Go-style flags
 * and a status pipe on fd 3; it asks the host daemon through the forwarder's VM-local control
 * socket and the pipe, and the port is reachable on the host through edgeport. Inside the VM the
 * drop-in serves the port too, as dockerd's own proxy does.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { INDEX_HTML, startTestbed, type Testbed } from "../../scripts/testbed.ts";
import type { PortState } from "../../src/publisher/daemon.ts";
import { EDGEPORT, ensureBinary, hasLog, spawnHost, stopProcess, until } from "../helpers/e2e.ts";
import { canBind, freePortRange } from "../helpers/tcp-client.ts";
import { udpClient } from "../helpers/udp-client.ts";

const vmDir = mkdtempSync("/tmp/edgeport-dp-");
const vmControl = join(vmDir, "control.sock");
let tb: Testbed;
let fwd: Bun.Subprocess;
let fwdArgs: string[];
let fwdLog: string;
let host: Bun.Subprocess;
let api: string;
let base: number;

/** curl from inside the VM (the test bed's namespace) */
const curlInVm = (h: string, port: number) =>
  Bun.spawnSync([
    "nsenter",
    `--net=${tb.netnsPath}`,
    "--",
    "curl",
    "-sS",
    "-m",
    "3",
    `http://${h}:${port}/`,
  ]).stdout.toString();
const connectsInVm = (port: number) =>
  Bun.spawnSync(["nsenter", `--net=${tb.netnsPath}`, "--", "bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${port}`])
    .exitCode === 0;
const curl = (h: string, port: number) =>
  Bun.spawnSync(["curl", "-sS", "-m", "3", `http://${h.includes(":") ? `[${h}]` : h}:${port}/`]).stdout.toString();
const ports = async () =>
  (await (await fetch("http://localhost/v1/ports", { unix: api } as RequestInit)).json()) as PortState[];

beforeAll(async () => {
  await ensureBinary();
  tb = await startTestbed({ userlandProxy: EDGEPORT, env: { EDGEPORT_CONTROL: `unix://${vmControl}` } });
  const fwdSock = join(tb.dir, "edgeport", "fwd.sock");
  fwdLog = join(tb.dir, "forwarder.log");
  fwdArgs = [
    EDGEPORT,
    "forwarder",
    "--listen",
    `unix://${fwdSock}`,
    "--allow",
    "172.17.0.0/16",
    "--control-listen",
    `unix://${vmControl}`,
    "--log-format",
    "json",
    "--log-level",
    "debug",
  ];
  fwd = tb.spawnInVm(fwdArgs, { logFile: fwdLog });
  await until(() => hasLog(fwdLog, /^listening on/), "the forwarder");
  api = join(tb.dir, "api", "control.sock");
  const runLog = join(tb.dir, "run.log");
  // the engine's events are not followed: dockerd's proxy is the one source of ports here
  host = spawnHost(
    ["run", "--engine", "none", "--relay", `unix://${fwdSock}`, "--api", `unix://${api}`, "--firewall", "none"],
    runLog,
  );
  await until(() => hasLog(runLog, /^pipe up/), "the host daemon's pipe");
  base = freePortRange(10);
}, 120_000);

afterAll(async () => {
  await stopProcess(host);
  await stopProcess(fwd);
  await tb?.stop();
  rmSync(vmDir, { recursive: true, force: true });
}, 60_000);

describe("edgeport as dockerd's userland-proxy-path", () => {
  test("docker run -p P:80 is reachable on the host (127.0.0.1 and ::1) and inside the VM on its loopback; docker rm -f frees it", async () => {
    const p = base;
    await tb.dockerOk([
      "run",
      "-d",
      "--name",
      "dpweb",
      "-p",
      `${p}:80`,
      "edgeport-busybox:test",
      "httpd",
      "-f",
      "-p",
      "80",
      "-h",
      "/www",
    ]);
    // dockerd returned only after our proxy wrote "0\n" to fd 3: the port is already published
    expect(curl("127.0.0.1", p)).toBe(INDEX_HTML);
    expect(curl("::1", p)).toBe(INDEX_HTML);
    // inside the VM, where dockerd's NAT does not cover the loopback: served by the drop-in itself
    expect(curlInVm("127.0.0.1", p)).toBe(INDEX_HTML);
    const rows = (await ports()).filter((x) => x.key.endsWith(`:${p}`));
    expect(rows.map((r) => r.source.kind)).toEqual(["docker-proxy", "docker-proxy"]);
    await tb.dockerOk(["rm", "-f", "dpweb"]);
    await until(() => canBind("127.0.0.1", p) && canBind("::1", p), "the host port to be free", 10_000);
    await until(() => !connectsInVm(p), "the port in the VM to close", 10_000);
    expect((await ports()).filter((x) => x.key.endsWith(`:${p}`))).toEqual([]);
  });

  test("UDP too: docker run -p P:7001/udp echoes through the host", async () => {
    const p = base + 1;
    await tb.runTestServer("dpudp", ["-p", `${p}:7001/udp`]);
    const c = await udpClient(p);
    // UDP may lose a datagram on a loaded machine (the flow is set up by the first one): ask again
    let answer: string | undefined;
    await until(
      async () => (answer = (await c.request("via dockerd's proxy", 1000))?.toString()) !== undefined,
      "an answer through the host",
      10_000,
    );
    expect(answer).toBe("via dockerd's proxy");
    c.close();
    // inside the VM too
    const inVm = Bun.spawnSync(
      ["nsenter", `--net=${tb.netnsPath}`, "--", "socat", "-t", "2", "-", `UDP:127.0.0.1:${p}`],
      { stdin: new TextEncoder().encode("inside the VM") },
    );
    expect(inVm.stdout.toString()).toBe("inside the VM");
    await tb.dockerOk(["rm", "-f", "dpudp"]);
    await until(async () => (await ports()).every((x) => !x.key.endsWith(`:${p}`)), "the UDP port to go", 10_000);
  });

  test("a host port that is taken: docker run fails with the host's reason, and nothing is left behind", async () => {
    const p = base + 2;
    const held = Bun.listen({ hostname: "127.0.0.1", port: p, socket: { data() {} } });
    try {
      const r = await tb.docker([
        "run",
        "-d",
        "--name",
        "dpbusy",
        "-p",
        `${p}:80`,
        "edgeport-busybox:test",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
      ]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${p}: the address is already in use`));
      expect(canBind("::1", p)).toBe(true);
    } finally {
      held.stop(true);
      await tb.docker(["rm", "-f", "dpbusy"]);
    }
  });

  test("a port taken inside the VM: docker run fails naming it, and nothing is published on the host", async () => {
    const p = base + 5;
    const holder = tb.spawnInVm(["socat", `TCP-LISTEN:${p},bind=0.0.0.0,reuseaddr,fork`, "SYSTEM:true"]);
    try {
      await until(() => connectsInVm(p), "the VM-side holder");
      const r = await tb.docker([
        "run",
        "-d",
        "--name",
        "dpvmbusy",
        "-p",
        `${p}:80`,
        "edgeport-busybox:test",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
      ]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`cannot listen on 0.0.0.0:${p}/tcp in the VM: EADDRINUSE`);
      expect(canBind("127.0.0.1", p)).toBe(true);
      expect((await ports()).filter((x) => x.key.endsWith(`:${p}`))).toEqual([]);
    } finally {
      await stopProcess(holder);
      await tb.docker(["rm", "-f", "dpvmbusy"]);
    }
  });

  test("the forwarder dies: the host releases the port; once it is back, the proxy publishes again by itself", async () => {
    const p = base + 3;
    await tb.dockerOk([
      "run",
      "-d",
      "--name",
      "dpagain",
      "-p",
      `${p}:80`,
      "edgeport-busybox:test",
      "httpd",
      "-f",
      "-p",
      "80",
      "-h",
      "/www",
    ]);
    expect(curl("127.0.0.1", p)).toBe(INDEX_HTML);
    await stopProcess(fwd, "SIGKILL");
    await until(() => canBind("127.0.0.1", p), "the host to release the port with the pipe", 10_000);
    fwd = tb.spawnInVm(fwdArgs, { logFile: fwdLog });
    await until(() => curl("127.0.0.1", p) === INDEX_HTML, "the port to be published again", 15_000);
    await tb.dockerOk(["rm", "-f", "dpagain"]);
    await until(() => canBind("127.0.0.1", p), "the port to be free", 10_000);
  });

  test("-use-listen-fd (newer dockerd): the socket passed as fd 4 is served in the VM, the port is published on the host, SIGTERM frees it", async () => {
    const p = base + 4;
    const web = await tb.runContainer({ name: "dpfd", args: ["httpd", "-f", "-p", "80", "-h", "/www"] });
    const log = join(tb.dir, "with-listen-fd.log");
    const proc = tb.spawnInVm(
      [
        "bun",
        join(import.meta.dir, "fixtures", "with-listen-fd.ts"),
        "tcp",
        String(p),
        "--",
        EDGEPORT,
        "-proto",
        "tcp",
        "-host-ip",
        "127.0.0.1",
        "-host-port",
        String(p),
        "-container-ip",
        web.ip,
        "-container-port",
        "80",
        "-use-listen-fd",
        "--control",
        `unix://${vmControl}`,
      ],
      { logFile: log },
    );
    try {
      await until(
        () => existsSync(log) && readFileSync(log, "utf8").includes('{"status":"0\\n"}'),
        "the proxy to report 0 on fd 3",
        15_000,
      );
      expect(curl("127.0.0.1", p)).toBe(INDEX_HTML);
      expect(curlInVm("127.0.0.1", p)).toBe(INDEX_HTML);
    } finally {
      await stopProcess(proc);
    }
    await until(() => canBind("127.0.0.1", p), "the host port to be free", 10_000);
    expect(connectsInVm(p)).toBe(false);
    await tb.dockerOk(["rm", "-f", "dpfd"]);
  });

  test("-use-listen-fd with UDP: the socket dockerd bound (and still holds) is adopted and served in the VM; the host echoes too", async () => {
    const p = base + 6;
    const srv = await tb.runTestServer("dpfdudp");
    const log = join(tb.dir, "with-listen-fd-udp.log");
    const proc = tb.spawnInVm(
      [
        "bun",
        join(import.meta.dir, "fixtures", "with-listen-fd.ts"),
        "udp",
        String(p),
        "--",
        EDGEPORT,
        "-proto",
        "udp",
        "-host-ip",
        "127.0.0.1",
        "-host-port",
        String(p),
        "-container-ip",
        srv.ip,
        "-container-port",
        "7001",
        "-use-listen-fd",
        "--control",
        `unix://${vmControl}`,
      ],
      { logFile: log },
    );
    try {
      await until(
        () => existsSync(log) && readFileSync(log, "utf8").includes('{"status":"0\\n"}'),
        "the proxy to report 0 on fd 3",
        15_000,
      );
      const inVm = Bun.spawnSync(
        ["nsenter", `--net=${tb.netnsPath}`, "--", "socat", "-t", "2", "-", `UDP:127.0.0.1:${p}`],
        { stdin: new TextEncoder().encode("fd 4, udp") },
      );
      expect(inVm.stdout.toString()).toBe("fd 4, udp");
      const c = await udpClient(p);
      let answer: string | undefined;
      await until(
        async () => (answer = (await c.request("from the host", 1000))?.toString()) !== undefined,
        "an answer through the host",
        10_000,
      );
      expect(answer).toBe("from the host");
      c.close();
    } finally {
      await stopProcess(proc);
      await tb.docker(["rm", "-f", "dpfdudp"]);
    }
  });

  test("run by hand: -help shows the usage; bad flags are named", () => {
    const help = Bun.spawnSync([EDGEPORT, "docker-proxy", "-help"]);
    expect(help.stdout.toString()).toContain("userland-proxy-path");
    const bad = Bun.spawnSync([
      EDGEPORT,
      "-proto",
      "tcp",
      "-host-ip",
      "0.0.0.0",
      "-host-port",
      "99999",
      "-container-ip",
      "172.17.0.2",
      "-container-port",
      "80",
    ]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toContain('-host-port "99999" is not a port 1-65535');
  });
});
