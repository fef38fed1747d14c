#!/usr/bin/env bun
/**
 * The main job as a demo: a test bed plays the VM (network namespace + dockerd), a busybox web
 * container runs in it, `edgeport forwarder` runs inside the VM, `edgeport publish` on the host,
 * and curl on the host fetches the page through edgeport. Everything is torn down at the end.
 */
import { join } from "node:path";
import { EDGEPORT, ensureBinary, hasLog, spawnHost, stopProcess, until, waitForListener } from "../test/helpers/e2e.ts";
import { freePort } from "../test/helpers/tcp-client.ts";
import { startTestbed } from "./testbed.ts";

const say = (s: string) => console.log(`demo: ${s}`);
await ensureBinary();
const tb = await startTestbed({ log: say });
let fwd: Bun.Subprocess | null = null;
let pub: Bun.Subprocess | null = null;
let ok = false;
try {
  const web = await tb.runContainer({ name: "web", args: ["httpd", "-f", "-p", "80", "-h", "/www"] });
  say(`container "web" serves http://${web.ip}/ inside the VM (namespace ${tb.name})`);
  const sock = join(tb.dir, "edgeport", "fwd.sock");
  const fwdLog = join(tb.dir, "forwarder.log");
  fwd = tb.spawnInVm(
    [EDGEPORT, "forwarder", "--listen", `unix://${sock}`, "--allow", "172.17.0.0/16", "--log-format", "json"],
    { logFile: fwdLog },
  );
  await until(() => hasLog(fwdLog, /^listening on/), "the forwarder");
  say(`in the VM:   edgeport forwarder --listen unix://${sock} --allow 172.17.0.0/16`);
  const port = Bun.argv.includes("--port") ? Number(Bun.argv[Bun.argv.indexOf("--port") + 1]) : freePort();
  pub = spawnHost(
    ["publish", "--relay", `unix://${sock}`, `127.0.0.1:${port}:${web.ip}:80`],
    join(tb.dir, "publish.log"),
  );
  say(`on the host: edgeport publish --relay unix://${sock} 127.0.0.1:${port}:${web.ip}:80`);
  await waitForListener(port);
  const r = Bun.spawnSync(["curl", "-sS", "-m", "5", `http://127.0.0.1:${port}/`]);
  say(
    `curl http://127.0.0.1:${port}/ -> ${JSON.stringify(r.stdout.toString())}${r.stderr.length ? ` (${r.stderr.toString().trim()})` : ""}`,
  );
  ok = r.exitCode === 0 && r.stdout.toString().length > 0;
} finally {
  await stopProcess(pub);
  await stopProcess(fwd);
  await tb.stop();
}
process.exit(ok ? 0 : 1);
