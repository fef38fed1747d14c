import { setDefaultTimeout } from "bun:test";

// bunfig.toml test timeouts are not applied by Bun 1.4: set them here.
// e2e tests move 100 MiB through two hops and start containers.
setDefaultTimeout(Number(process.env.EDGEPORT_TEST_TIMEOUT_MS ?? 60_000));
