// Runs inside a fresh Node.js project that has only the two tarballs installed (see
// scripts/npm-smoke.sh): the client must find the server in the platform package by itself,
// with no `binary` option, no AUTH_APP_SERVER_BIN and no auth-app-server on PATH; then an
// API-key sign-in and the token. Exits non-zero on any failure.
import assert from "node:assert/strict";
import { mkdtempSync, readlinkSync, realpathSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";

const require = createRequire(join(process.cwd(), "package.json"));
delete process.env.AUTH_APP_SERVER_BIN;
const platformPackage = `@auth-app-server/server-${process.platform}-${process.arch}`;
const installed = realpathSync(join(require.resolve(`${platformPackage}/package.json`), ".."));

const { AuthClient } = require("@auth-app-server/client");
const clientVersion = require("@auth-app-server/client/package.json").version;
const home = mkdtempSync(join(tmpdir(), "auth-app-server-smoke-"));
const key = "sk-smoke-0123456789abcdef";
const logs = [];
let auth;
try {
  auth = await AuthClient.start({
    args: ["--home", home],
    clientInfo: { name: "npm-smoke", version: "0" },
    restart: false,
    onLog: (line) => logs.push(line),
  });
  // The process that answers is the binary from the platform package.
  if (process.platform === "linux") {
    const exe = readlinkSync(`/proc/${auth.pid}/exe`);
    assert.ok(exe.startsWith(installed + sep), `the server runs ${exe}, not the one in ${installed}`);
  }
  assert.equal(auth.serverInfo?.version, clientVersion, "server and client versions");
  const login = await auth.request("login", { type: "apiKey", apiKey: key });
  assert.equal(login.type, "apiKey");
  assert.equal(await auth.getToken(), key, "the token is the key signed in with");
  const status = await auth.request("getAuthStatus", {});
  assert.equal(status.state, "active");
  console.log(`npm smoke: ${platformPackage} ${auth.serverInfo?.version} from ${installed}: signed in, token ok`);
} catch (error) {
  console.error(`npm smoke failed: ${error?.stack ?? error}`);
  if (logs.length > 0) console.error(`server log:\n${logs.join("\n")}`);
  process.exitCode = 1;
} finally {
  await auth?.dispose();
  rmSync(home, { recursive: true, force: true });
}
