// AuthClient against the real server: typed calls, notifications, errors, finding the binary,
// restart after a kill, dispose.

import assert from "node:assert/strict";
import { dirname, delimiter, join } from "node:path";
import { test } from "node:test";

import {
  AuthClient,
  ClientDisposedError,
  ErrorCode,
  RESTART_DEFAULTS,
  RpcError,
  ServerExitedError,
  TimeoutError,
  afterRejection,
  restartDelay,
  restartOptions,
} from "@auth-app-server/client";

import { readFileSync } from "node:fs";

import { clientProject, eventually, next, packageDir, runHost, serverArgs, serverBinary, serverEnv, tempHome } from "./helpers.mjs";

/** The stand-in for a broken server (test/fixtures/broken-server.mjs) in `mode`. */
function brokenServer(mode) {
  return { binary: process.execPath, args: [join(import.meta.dirname ?? dirname(new URL(import.meta.url).pathname), "fixtures", "broken-server.mjs"), mode] };
}

/** A promise of the first `count` lines `onLog` receives that match `pattern`. */
function logLines(pattern, count) {
  const lines = [];
  let done;
  const all = new Promise((resolve) => (done = resolve));
  const onLog = (line) => {
    if (pattern.test(line) && lines.push(line) === count) done(lines);
  };
  return { onLog, all, lines };
}

async function start(t, options = {}) {
  const client = await AuthClient.start({
    binary: serverBinary,
    args: serverArgs(tempHome(t)),
    env: serverEnv(),
    ...options,
  });
  t.after(() => client.dispose());
  return client;
}

function isRunning(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("typed calls and notifications", async (t) => {
  const client = await start(t, { clientInfo: { name: "client-test", version: "1.0.0" } });
  assert.equal(client.serverInfo?.name, "auth-app-server");

  const before = await client.request("getAuthStatus");
  assert.deepEqual(before, { authMethod: null, state: "signedOut", storage: "file" });

  const changed = next(client, "authStatusChanged");
  const login = await client.request("login", { type: "apiKey", apiKey: "sk-client-test-0123456789" });
  assert.deepEqual(login, { type: "apiKey", warnings: [] });
  assert.deepEqual(await changed, { authMethod: "apiKey", credential: "default", state: "active" });

  assert.equal(await client.getToken(), "sk-client-test-0123456789");
  const advice = await client.request("reportAuthFailure", { status: 401, rejectedToken: "sk-client-test-0123456789" });
  assert.equal(advice.action, "apiKeyRejected");

  assert.deepEqual(await client.request("cancelLogin", { loginId: "nothing" }), { status: "notFound" });
  const signedOut = next(client, "authStatusChanged");
  assert.deepEqual(await client.request("logout"), {});
  assert.deepEqual(await signedOut, { authMethod: null, credential: "default", state: "signedOut" });
});

test("error answers reject with RpcError and its code", async (t) => {
  const client = await start(t);
  const noProvider = await client.request("login", { type: "deviceCode" }).catch((error) => error);
  assert.ok(noProvider instanceof RpcError, String(noProvider));
  assert.equal(noProvider.code, ErrorCode.NoProvider);
  const invalid = await client.request("cancelLogin", { loginId: 7 }).catch((error) => error);
  assert.equal(invalid.code, ErrorCode.InvalidParams);
  assert.match(invalid.message, /`loginId` must be a string; expected \{"loginId":string\}/);
});

test("the binary comes from the option, AUTH_APP_SERVER_BIN, or PATH", async (t) => {
  const saved = { bin: process.env.AUTH_APP_SERVER_BIN, path: process.env.PATH };
  t.after(() => {
    if (saved.bin === undefined) delete process.env.AUTH_APP_SERVER_BIN;
    else process.env.AUTH_APP_SERVER_BIN = saved.bin;
    process.env.PATH = saved.path;
  });
  const args = serverArgs(tempHome(t));

  process.env.AUTH_APP_SERVER_BIN = serverBinary;
  const fromEnv = await AuthClient.start({ args, env: serverEnv() });
  assert.equal(fromEnv.serverInfo?.name, "auth-app-server");
  await fromEnv.dispose();

  delete process.env.AUTH_APP_SERVER_BIN;
  process.env.PATH = `${dirname(serverBinary)}${delimiter}${saved.path}`;
  const fromPath = await AuthClient.start({ args, env: serverEnv() });
  assert.equal(fromPath.serverInfo?.name, "auth-app-server");
  await fromPath.dispose();

  const missing = await AuthClient.start({ binary: "/nonexistent/auth-app-server", args }).catch((error) => error);
  assert.ok(missing instanceof ServerExitedError, String(missing));
  assert.match(missing.message, /could not be started/);
});

test("a killed server is restarted, and requests wait for it", async (t) => {
  const logs = [];
  const client = await start(t, { restart: { initialDelayMs: 100 }, onLog: (line) => logs.push(line) });
  await client.request("login", { type: "apiKey", apiKey: "sk-restart-0123456789" });
  const first = client.pid;
  assert.ok(first);

  const restarted = new Promise((resolve) => client.onRestart(resolve));
  process.kill(first, "SIGKILL");
  await eventually(() => !isRunning(first));
  // Sent while the server is down: answered by the next one.
  const status = await client.request("getAuthStatus", { includeToken: true });
  const event = await restarted;
  assert.equal(event.signal, "SIGKILL");
  assert.equal(event.serverInfo.name, "auth-app-server");
  assert.notEqual(client.pid, first);
  // The credentials are on disk: the new server has them.
  assert.equal(status.state, "active");
  assert.equal(status.authToken, "sk-restart-0123456789");
  assert.ok(logs.some((line) => line.includes("restarting in 100 ms")), logs.join("\n"));
});

test("a request in flight when the server dies rejects with ServerExitedError", async (t) => {
  const client = await start(t, { restart: false });
  const pid = client.pid;
  // Many requests, then a kill: those not answered yet are rejected, none is left hanging.
  const calls = Array.from({ length: 200 }, () => client.request("getAuthStatus").then(() => "answered", (error) => error));
  process.kill(pid, "SIGKILL");
  const outcomes = await Promise.all(calls);
  for (const outcome of outcomes) {
    if (outcome !== "answered") assert.ok(outcome instanceof ServerExitedError, String(outcome));
  }
  const after = await client.request("getAuthStatus").catch((error) => error);
  assert.ok(after instanceof ServerExitedError, "without restart, the client stays down");
});

test("dispose closes the server and stops restarts", async (t) => {
  const client = await start(t, { restart: { initialDelayMs: 10 } });
  const pid = client.pid;
  await client.dispose();
  assert.equal(isRunning(pid), false);
  await assert.rejects(client.request("getAuthStatus"), ClientDisposedError);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(client.pid, undefined, "no server was started again");
});

test("restart delays double up to the limit", () => {
  const options = { ...RESTART_DEFAULTS, initialDelayMs: 250, maxDelayMs: 2_000 };
  const delays = [0, 1, 2, 3, 4, 50].map((attempt) => restartDelay(attempt, options));
  assert.deepEqual(delays, [250, 500, 1000, 2000, 2000, 2000]);
});

test("after a rejection: retry once on a new token, never twice", () => {
  const cases = [
    ["refreshed", false, "retry"],
    ["alreadyRotated", false, "retry"],
    ["refreshed", true, "fail"],
    ["alreadyRotated", true, "fail"],
    ["notAuthFailure", false, "return"],
    ["notAuthFailure", true, "return"],
    ["needsLogin", false, "fail"],
    ["retryLater", false, "fail"],
    ["insufficientScope", false, "fail"],
    ["apiKeyRejected", false, "fail"],
    ["refreshDidNotHelp", false, "fail"],
  ];
  for (const [action, retried, expected] of cases) {
    assert.equal(afterRejection(action, retried), expected, `${action} retried=${retried}`);
  }
});

test("restart options passed as undefined take their defaults; the loop does not spin", async (t) => {
  const restarts = logLines(/restarting in/, 2);
  const client = await AuthClient.start({
    ...brokenServer("crash-after-initialize"),
    restart: { initialDelayMs: undefined, maxDelayMs: undefined, stableAfterMs: undefined },
    onLog: restarts.onLog,
  });
  t.after(() => client.dispose());
  const [first, second] = await restarts.all;
  assert.match(first, /restarting in 250 ms/);
  assert.match(second, /restarting in 500 ms/);
});

test("bad restart and close options are refused before anything is spawned", async () => {
  const cases = [
    [{ restart: { initialDelayMs: Number.NaN } }, TypeError, /restart\.initialDelayMs must be a number/],
    [{ restart: { initialDelayMs: "100" } }, TypeError, /restart\.initialDelayMs/],
    [{ restart: { initialDelayMs: 0 } }, RangeError, /restart\.initialDelayMs must be in 1\.\./],
    [{ restart: { initialDelayMs: -5 } }, RangeError, /restart\.initialDelayMs/],
    [{ restart: { maxDelayMs: Infinity } }, RangeError, /restart\.maxDelayMs/],
    [{ restart: { initialDelayMs: 1000, maxDelayMs: 10 } }, RangeError, /restart\.maxDelayMs must be in 1000\.\./],
    [{ restart: { stableAfterMs: -1 } }, RangeError, /restart\.stableAfterMs/],
    [{ restart: true }, TypeError, /restart must be an object or false/],
    [{ closeTimeoutMs: Number.NaN }, TypeError, /closeTimeoutMs/],
  ];
  for (const [options, type, message] of cases) {
    // A binary that does not exist: had it been spawned, the error would be a ServerExitedError.
    const error = await AuthClient.start({ binary: "/nonexistent/auth-app-server", ...options }).catch((e) => e);
    assert.ok(error instanceof type, `${JSON.stringify(options)}: ${error}`);
    assert.match(error.message, message);
  }
  assert.deepEqual(restartOptions({ initialDelayMs: undefined, maxDelayMs: 1_000 }), { ...RESTART_DEFAULTS, maxDelayMs: 1_000 });
  assert.deepEqual(restartOptions(undefined), RESTART_DEFAULTS);
  assert.deepEqual(restartOptions({ initialDelayMs: 60_000 }), { ...RESTART_DEFAULTS, initialDelayMs: 60_000, maxDelayMs: 60_000 });
});

test("a server that exits at start: the error quotes its stderr, and nothing says it restarts", async (t) => {
  const args = [...serverArgs(tempHome(t)), "--no-such-flag"];
  // Without onLog: the reason is still in the error.
  const quiet = await AuthClient.start({ binary: serverBinary, args, env: serverEnv() }).catch((error) => error);
  assert.ok(quiet instanceof ServerExitedError, String(quiet));
  assert.equal(quiet.exitCode, 64);
  assert.match(quiet.message, /exited with code 64 before answering initialize/);
  assert.match(quiet.message, /unexpected argument '--no-such-flag'/);
  assert.ok(quiet.stderr.some((line) => line.includes("--no-such-flag")), quiet.stderr.join("\n"));

  const logs = [];
  const logged = await AuthClient.start({ binary: serverBinary, args, env: serverEnv(), onLog: (line) => logs.push(line) }).catch((e) => e);
  assert.ok(logged instanceof ServerExitedError, String(logged));
  assert.ok(!logs.some((line) => /restarting/.test(line) && !/not restarting/.test(line)), logs.join("\n"));
  assert.ok(logs.some((line) => /not restarting: start\(\) fails/.test(line)), logs.join("\n"));
});

test("the stderr kept for an error is bounded: the last 20 lines, each cut", async () => {
  const error = await AuthClient.start({ ...brokenServer("spew-and-exit") }).catch((e) => e);
  assert.ok(error instanceof ServerExitedError, String(error));
  assert.equal(error.exitCode, 1);
  assert.equal(error.stderr.length, 20);
  assert.equal(error.stderr.at(-1), "broken-server: the last line");
  assert.equal(error.stderr.at(-2), `${"x".repeat(500)}…`);
  assert.equal(error.stderr.at(0), "broken-server: line 83");
  assert.ok(error.message.length < 20 * 520 + 200, `${error.message.length} characters`);
});

test("with restart: false, a server that dies is logged as not restarted", async (t) => {
  const stopped = logLines(/the server ended/, 1);
  const client = await start(t, { restart: false, onLog: stopped.onLog });
  process.kill(client.pid, "SIGKILL");
  const [line] = await stopped.all;
  assert.match(line, /signal SIGKILL\); not restarting \(restart: false\)/);
  await assert.rejects(client.request("getAuthStatus"), ServerExitedError);
});

test("start() gives up on a server that never answers initialize, and kills it", { timeout: 20_000 }, async (t) => {
  const spawns = join(tempHome(t), "spawns");
  const began = Date.now();
  const error = await AuthClient.start({
    ...brokenServer("silent"),
    env: { ...process.env, BROKEN_SERVER_SPAWNS: spawns },
    // Long enough for a loaded machine to start the stand-in (it writes its stderr line first).
    startTimeoutMs: 2_000,
  }).catch((e) => e);
  assert.ok(error instanceof TimeoutError, String(error));
  assert.equal(error.method, "initialize");
  assert.equal(error.timeoutMs, 2_000);
  assert.match(error.message, /did not answer within 2000 ms \(startTimeoutMs\): the server was killed/);
  assert.match(error.message, /broken-server: started in mode silent/, "the end of its stderr");
  assert.ok(Date.now() - began >= 2_000);
  const pids = readFileSync(spawns, "utf8").trim().split("\n").map(Number);
  assert.equal(pids.length, 1, "started once, not restarted");
  assert.equal(isRunning(pids[0]), false, "the silent server was killed");
});

test("the start timeout has a default", { timeout: 30_000 }, async () => {
  const error = await AuthClient.start({ ...brokenServer("silent") }).catch((e) => e);
  assert.ok(error instanceof TimeoutError, String(error));
  assert.equal(error.timeoutMs, 10_000);
});

test("request() gives up on an answer that does not come; the server keeps running", { timeout: 20_000 }, async (t) => {
  const client = await AuthClient.start({ ...brokenServer("no-answers"), requestTimeoutMs: 200 });
  t.after(() => client.dispose());
  const byDefault = await client.request("getAuthStatus").catch((e) => e);
  assert.ok(byDefault instanceof TimeoutError, String(byDefault));
  assert.equal(byDefault.method, "getAuthStatus");
  assert.equal(byDefault.timeoutMs, 200);
  const perCall = await client.request("logout", undefined, { timeoutMs: 50 }).catch((e) => e);
  assert.ok(perCall instanceof TimeoutError, String(perCall));
  assert.equal(perCall.timeoutMs, 50);
  assert.ok(isRunning(client.pid), "a request timeout does not kill the server");
  await assert.rejects(client.request("getAuthStatus", undefined, { timeoutMs: 0 }), RangeError);
  await assert.rejects(AuthClient.start({ ...brokenServer("no-answers"), startTimeoutMs: Number.NaN }), TypeError);
});

test("a request that waits for a restart counts the wait in its timeout", { timeout: 20_000 }, async (t) => {
  const restarting = logLines(/restarting in 5000 ms/, 1);
  const client = await start(t, { restart: { initialDelayMs: 5_000 }, onLog: restarting.onLog });
  process.kill(client.pid, "SIGKILL");
  await restarting.all;
  const error = await client.request("getAuthStatus", undefined, { timeoutMs: 100 }).catch((e) => e);
  assert.ok(error instanceof TimeoutError, String(error));
  assert.match(error.message, /the server was restarting/);
});

test("client and server of one release: the versions match, nothing is logged", async (t) => {
  const logs = [];
  const client = await start(t, { onLog: (line) => logs.push(line) });
  const { version } = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
  assert.equal(AuthClient.version, version);
  assert.equal(client.serverVersion, version);
  assert.equal(client.versionMismatch, false);
  assert.ok(!logs.some((line) => /version mismatch/.test(line)), logs.join("\n"));
});

test("a client of another version warns through onLog and says so", async (t) => {
  const root = clientProject(t, {
    withServer: false,
    version: "9.9.9-test",
    host: `const { AuthClient } = require("@auth-app-server/client");
(async () => {
  const warnings = [];
  const onLog = (line) => { if (/version mismatch/.test(line)) warnings.push(line); };
  const client = await AuthClient.start({ binary: process.env.SERVER, args: ["--home", process.argv[2]], onLog });
  console.log(JSON.stringify({ client: AuthClient.version, server: client.serverVersion, mismatch: client.versionMismatch, warnings }));
  await client.dispose();
})();
`,
  });
  const outcome = await runHost(t, root, { SERVER: serverBinary });
  const { version } = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
  assert.equal(outcome.client, "9.9.9-test");
  assert.equal(outcome.server, version);
  assert.equal(outcome.mismatch, true);
  assert.equal(outcome.warnings.length, 1, outcome.warnings.join("\n"));
  assert.match(outcome.warnings[0], new RegExp(`WARN version mismatch: @auth-app-server/client 9\\.9\\.9-test, but the server .* \\(from option\\) is auth-app-server ${version.replaceAll(".", "\\.")}`));
});
