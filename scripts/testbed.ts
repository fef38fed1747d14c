#!/usr/bin/env bun
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
/**
 * The test bed: a network namespace that plays the VM, a real dockerd inside it (started with
 * `nsenter --net=`, which keeps the cgroup mounts visible, unlike `ip netns exec`), an image built
 * offline from Debian's busybox-static, and the test server. The host side stays in the root
 * namespace. While a test bed runs, the root namespace gets a blackhole route for 172.16.0.0/12,
 * where every test bed network lives, so nothing on the host can reach a container except through
 * edgeport and no stray packet leaves the machine.
 *
 *   bun scripts/testbed.ts up        start one, print its JSON, tear down on Ctrl-C
 *   bun scripts/testbed.ts selftest  start, serve a page from a container, tear down
 */
import { $ } from "bun";
import { until } from "../test/helpers/until.ts";

export const BUSYBOX_IMAGE = "edgeport-busybox:test";
export const TESTSRV_DIR_IN_CONTAINER = "/testsrv";
export const TESTSRV_PATH_IN_CONTAINER = `${TESTSRV_DIR_IN_CONTAINER}/edgeport-testsrv`;
export const INDEX_HTML = "hello from the busybox container\n";
const ROOT = resolve(import.meta.dir, "..");
/** docker in the test bed takes every network from here (--bip, --default-address-pool) */
const BLACKHOLES = ["172.16.0.0/12"];

export interface Testbed {
  name: string;
  netnsPath: string;
  dir: string;
  dockerSock: string;
  dockerHost: string;
  docker(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  dockerOk(args: string[]): Promise<string>;
  /** flags: more `docker run` flags, e.g. ["-p", "127.0.0.1:8053:7001/udp"] */
  runContainer(o: {
    name?: string;
    image?: string;
    args: string[];
    mounts?: string[];
    flags?: string[];
  }): Promise<{ id: string; ip: string }>;
  runTestServer(name?: string, flags?: string[]): Promise<{ id: string; ip: string }>;
  /** a process inside the VM namespace */
  spawnInVm(cmd: string[], o?: { logFile?: string; stdin?: "pipe" | "ignore" }): Bun.Subprocess;
  /** stops dockerd: SIGTERM stops its containers with it; SIGKILL leaves them running (an engine crash) */
  stopEngine(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** starts dockerd again on the same data */
  startEngine(): Promise<void>;
  stop(): Promise<void>;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Compiles the test server once (dist/edgeport-testsrv, rebuilt when a source is newer). */
export async function buildTestServer(): Promise<string> {
  const out = join(ROOT, "dist", "edgeport-testsrv");
  const srcs = ["test/e2e/fixtures/testsrv.ts", "test/e2e/fixtures/prng.ts"].map((f) => join(ROOT, f));
  const fresh = existsSync(out) && srcs.every((s) => statSync(s).mtimeMs < statSync(out).mtimeMs);
  if (!fresh) await $`bun build --compile ${srcs[0]} --outfile ${out}`.cwd(ROOT).quiet();
  return out;
}

/** A tiny root: static busybox, its applets, and lib symlinks so /usr mounted from the host can run glibc programs. */
function makeImageRoot(dir: string): string {
  const root = join(dir, "image-root");
  for (const d of ["bin", "etc", "tmp", "www", "usr", "proc", "sys", "dev"])
    mkdirSync(join(root, d), { recursive: true });
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));
  if (!busybox) throw new Error("test bed: no busybox; install Debian's busybox-static (scripts/setup.sh does)");
  copyFileSync(busybox, join(root, "bin", "busybox"));
  const applets = Bun.spawnSync([busybox, "--list"])
    .stdout.toString()
    .split("\n")
    .filter((a) => a && a !== "busybox");
  for (const a of applets) symlinkSync("busybox", join(root, "bin", a));
  symlinkSync("usr/lib", join(root, "lib"));
  symlinkSync("usr/lib64", join(root, "lib64"));
  writeFileSync(join(root, "etc", "passwd"), "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
  writeFileSync(join(root, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
  writeFileSync(join(root, "www", "index.html"), INDEX_HTML);
  return root;
}

/**
 * @param opts.userlandProxy dockerd runs this binary as its userland proxy (userland-proxy-path), with
 *   opts.env in its environment; without it dockerd runs with --userland-proxy=false
 */
export async function startTestbed(
  opts: { log?: (s: string) => void; userlandProxy?: string; env?: Record<string, string> } = {},
): Promise<Testbed> {
  const log = opts.log ?? (() => {});
  const t0 = performance.now();
  const dir = mkdtempSync("/tmp/edgeport-tb-");
  const name = `ep-${Buffer.from(crypto.getRandomValues(new Uint8Array(4))).toString("hex")}`;
  const netnsPath = `/run/netns/${name}`;
  const dockerSock = join(dir, "docker.sock");
  const dockerHost = `unix://${dockerSock}`;
  const execRoot = join(dir, "exec");
  const ownedRoutes: string[] = [];
  const procs: Bun.Subprocess[] = [];
  let dockerd: Bun.Subprocess | null = null;
  let stopped = false;

  const docker = async (args: string[]) => {
    const p = Bun.spawn(["docker", ...args], {
      env: { ...process.env, DOCKER_HOST: dockerHost },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([
      new Response(p.stdout).text(),
      new Response(p.stderr).text(),
      p.exited,
    ]);
    return { code, stdout, stderr };
  };
  const dockerOk = async (args: string[]) => {
    const r = await docker(args);
    if (r.code !== 0) throw new Error(`docker ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
    return r.stdout.trim();
  };

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    const step = async (what: string, f: () => unknown) => {
      try {
        await f();
      } catch (e) {
        log(`teardown: ${what}: ${(e as Error).message}`);
      }
    };
    for (const p of procs.reverse())
      await step("stop vm process", async () => {
        if (p.exitCode === null) {
          p.kill("SIGTERM");
          await Promise.race([p.exited, Bun.sleep(3000)]);
          if (p.exitCode === null) p.kill("SIGKILL");
        }
      });
    if (dockerd && dockerd.exitCode === null) {
      await step("remove containers", async () => {
        const ids = (await docker(["ps", "-aq"])).stdout.split("\n").filter(Boolean);
        if (ids.length) await docker(["rm", "-f", ...ids]);
      });
      await step("stop dockerd", () => stopEngine());
    }
    await step("stop containerd", async () => {
      for (const f of [join(execRoot, "containerd", "containerd.pid"), join(dir, "containerd.pid")]) {
        if (!existsSync(f)) continue;
        const pid = Number(readFileSync(f, "utf8").trim());
        if (pid > 1 && alive(pid)) {
          process.kill(pid, "SIGTERM");
          await until(() => !alive(pid), "containerd to exit", 5000).catch(() => process.kill(pid, "SIGKILL"));
        }
      }
    });
    await step("stop leftovers", async () => {
      // anything still running from our directory (a containerd-shim orphaned by an engine crash)
      for (const pid of readdirSync("/proc")
        .filter((d) => /^\d+$/.test(d))
        .map(Number)) {
        let cmd = "";
        try {
          cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        } catch {
          continue;
        }
        if (pid !== process.pid && cmd.includes(dir)) process.kill(pid, "SIGKILL");
      }
    });
    await step("unmount", async () => {
      const mounts = readFileSync("/proc/mounts", "utf8")
        .split("\n")
        .map((l) => l.split(" ")[1] ?? "")
        .filter((m) => m.startsWith(dir));
      for (const m of mounts.sort((a, b) => b.length - a.length)) Bun.spawnSync(["umount", "-l", m]);
    });
    await step("delete namespace", () => existsSync(netnsPath) && Bun.spawnSync(["ip", "netns", "del", name]));
    for (const r of ownedRoutes) await step(`route ${r}`, () => Bun.spawnSync(["ip", "route", "del", "blackhole", r]));
    await step("remove files", () => rmSync(dir, { recursive: true, force: true }));
    log(`test bed ${name} torn down`);
  }

  async function startEngine(): Promise<void> {
    const logFd = openSync(join(dir, "dockerd.log"), "a");
    const d = Bun.spawn(
      [
        "nsenter",
        `--net=${netnsPath}`,
        "--",
        "dockerd",
        "--data-root",
        join(dir, "data"),
        "--exec-root",
        execRoot,
        "--pidfile",
        join(dir, "docker.pid"),
        "-H",
        dockerHost,
        ...(opts.userlandProxy
          ? ["--userland-proxy=true", `--userland-proxy-path=${opts.userlandProxy}`]
          : ["--userland-proxy=false"]),
        "--log-level=warn",
        "--bip",
        "172.17.0.1/16",
        "--default-address-pool",
        "base=172.18.0.0/15,size=24",
      ],
      { stdout: logFd, stderr: logFd, stdin: "ignore", env: { ...process.env, ...opts.env } },
    );
    dockerd = d;
    await until(
      async () => {
        if (d.exitCode !== null)
          throw new Error(
            `dockerd exited with ${d.exitCode}:\n${readFileSync(join(dir, "dockerd.log"), "utf8").slice(-2000)}`,
          );
        try {
          const r = await fetch("http://localhost/_ping", { unix: dockerSock } as RequestInit);
          return r.ok;
        } catch {
          return false;
        }
      },
      "dockerd to answer /_ping",
      30_000,
    );
  }

  async function stopEngine(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const d = dockerd;
    if (!d || d.exitCode !== null) return;
    d.kill(signal);
    await Promise.race([d.exited, Bun.sleep(15_000)]);
    if (d.exitCode === null) {
      d.kill("SIGKILL");
      await d.exited;
    }
  }

  const onExit = () => void stop();
  process.once("beforeExit", onExit);

  try {
    const add = Bun.spawnSync(["ip", "netns", "add", name]);
    if (add.exitCode !== 0) throw new Error(`ip netns add ${name}: ${add.stderr.toString().trim()}`);
    Bun.spawnSync(["ip", "-n", name, "link", "set", "lo", "up"]);
    // the VM's ephemeral ports (and so dockerd's -P ports) apart from the host's (32768-60999) and
    // from the tests' ports (15000-32000, freePortRange): a -P port is then never one a host client
    // socket holds, and the VM's own dials never take a port a test listens on in the VM. 13,000
    // ports: the churn test's 6,000 dials to one destination sit in TIME_WAIT at once
    const range = Bun.spawnSync([
      "nsenter",
      `--net=${netnsPath}`,
      "--",
      "sysctl",
      "-qw",
      "net.ipv4.ip_local_port_range=2000 14999",
    ]);
    if (range.exitCode !== 0)
      throw new Error(`sysctl ip_local_port_range in ${name}: ${range.stderr.toString().trim()}`);
    for (const r of BLACKHOLES) {
      if (Bun.spawnSync(["ip", "route", "add", "blackhole", r]).exitCode === 0) ownedRoutes.push(r);
    }
    await startEngine();
    log(`dockerd ready in ${Math.round(performance.now() - t0)} ms`);
    const tar = Bun.spawn(["tar", "-C", makeImageRoot(dir), "-c", "."], { stdout: "pipe" });
    const imp = Bun.spawn(["docker", "import", "-c", 'CMD ["/bin/sh"]', "-", BUSYBOX_IMAGE], {
      env: { ...process.env, DOCKER_HOST: dockerHost },
      stdin: tar.stdout,
      stdout: "ignore",
      stderr: "pipe",
    });
    if ((await imp.exited) !== 0) throw new Error(`docker import: ${await new Response(imp.stderr).text()}`);
    const srv = await buildTestServer();
    mkdirSync(join(dir, "testsrv"));
    copyFileSync(srv, join(dir, "testsrv", "edgeport-testsrv"));
    Bun.spawnSync(["chmod", "755", join(dir, "testsrv", "edgeport-testsrv")]);
    log(`test bed ${name} ready in ${Math.round(performance.now() - t0)} ms`);
  } catch (e) {
    await stop();
    throw e;
  }

  const tb: Testbed = {
    name,
    netnsPath,
    dir,
    dockerSock,
    dockerHost,
    docker,
    dockerOk,
    async runContainer(o) {
      const args = [
        "run",
        "-d",
        ...(o.name ? ["--name", o.name] : []),
        ...(o.mounts ?? []).flatMap((m) => ["-v", m]),
        ...(o.flags ?? []),
        o.image ?? BUSYBOX_IMAGE,
        ...o.args,
      ];
      const id = await dockerOk(args);
      const ip = await dockerOk(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id]);
      return { id, ip };
    },
    async runTestServer(name, flags) {
      const c = await tb.runContainer({
        name,
        args: [TESTSRV_PATH_IN_CONTAINER],
        flags,
        mounts: ["/usr:/usr:ro", `${join(dir, "testsrv")}:${TESTSRV_DIR_IN_CONTAINER}:ro`],
      });
      // ready when its last port answers from inside the VM
      await until(
        () =>
          Bun.spawnSync(["nsenter", `--net=${netnsPath}`, "--", "bash", "-c", `exec 3<>/dev/tcp/${c.ip}/7009`])
            .exitCode === 0,
        "the test server",
        15_000,
      );
      return c;
    },
    spawnInVm(cmd, o = {}) {
      const out = o.logFile ? openSync(o.logFile, "a") : "inherit";
      const p = Bun.spawn(["nsenter", `--net=${netnsPath}`, "--", ...cmd], {
        stdout: out,
        stderr: out,
        stdin: o.stdin ?? "ignore",
      });
      procs.push(p);
      return p;
    },
    stopEngine,
    startEngine,
    stop,
  };
  return tb;
}

if (import.meta.main) {
  const cmd = process.argv[2];
  const tb = await startTestbed({ log: (s) => console.error(s) });
  const signals = ["SIGINT", "SIGTERM"] as const;
  if (cmd === "up") {
    console.log(JSON.stringify({ name: tb.name, netnsPath: tb.netnsPath, dockerHost: tb.dockerHost, dir: tb.dir }));
    await new Promise<void>((r) => {
      for (const s of signals) process.once(s, () => r());
    });
    await tb.stop();
  } else {
    try {
      const web = await tb.runContainer({ args: ["httpd", "-f", "-p", "80", "-h", "/www"] });
      const r = Bun.spawnSync(["nsenter", `--net=${tb.netnsPath}`, "--", "curl", "-s", "-m", "5", `http://${web.ip}/`]);
      console.log(`from inside the VM, http://${web.ip}/ says: ${r.stdout.toString().trim()}`);
      if (r.stdout.toString() !== INDEX_HTML) process.exitCode = 1;
    } finally {
      await tb.stop();
    }
  }
}
