// A complete auth-app-server client in plain Node.js: spawn the server, initialize, sign in
// with an API key, poll getAuthStatus, react to authStatusChanged, report a simulated 401,
// sign out, and exit cleanly. Types come from the generated bindings (schema/typescript).
//
// Run: node client.mjs            (uses ../../target/debug/auth-app-server)
//      AUTH_APP_SERVER_BIN=/path/to/auth-app-server node client.mjs

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

/** @typedef {import("../../schema/typescript/index").InitializeResult} InitializeResult */
/** @typedef {import("../../schema/typescript/index").AuthStatus} AuthStatus */
/** @typedef {import("../../schema/typescript/index").GetAuthStatusParams} GetAuthStatusParams */
/** @typedef {import("../../schema/typescript/index").LoginParams} LoginParams */
/** @typedef {import("../../schema/typescript/index").LoginResult} LoginResult */
/** @typedef {import("../../schema/typescript/index").ReportAuthFailureParams} ReportAuthFailureParams */
/** @typedef {import("../../schema/typescript/index").ReportAuthFailureResult} ReportAuthFailureResult */
/** @typedef {import("../../schema/typescript/index").AuthStatusChangedNotification} AuthStatusChangedNotification */

const here = dirname(fileURLToPath(import.meta.url));
const binary = process.env.AUTH_APP_SERVER_BIN ?? join(here, "..", "..", "target", "debug", "auth-app-server");
if (!existsSync(binary)) {
  console.error(`no server binary at ${binary}: run \`cargo build -p auth-app-server\` first`);
  process.exit(2);
}

/** A JSON-RPC client over the server's stdin/stdout, one message per line. */
class AuthAppServer {
  /** @param {string} home */
  constructor(home) {
    this.child = spawn(binary, ["--home", home], { stdio: ["pipe", "pipe", "pipe"] });
    this.nextId = 1;
    /** @type {Map<number, {resolve: (value: any) => void, reject: (error: Error) => void}>} */
    this.pending = new Map();
    /** @type {Array<(method: string, params: any) => void>} */
    this.listeners = [];
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
    let buffered = "";
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (chunk) => {
      buffered += chunk.toString();
      let end;
      while ((end = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        if (line.trim()) this.#receive(JSON.parse(line));
      }
    });
    // The server logs to stderr; show it dimmed so the example's own output stands out.
    this.child.stderr.on("data", (chunk) => process.env.SHOW_SERVER_LOG && console.error(chunk.toString().trimEnd()));
  }

  /** @param {any} message */
  #receive(message) {
    if (message.id !== undefined && message.id !== null && this.pending.has(message.id)) {
      const { resolve, reject } = /** @type {any} */ (this.pending.get(message.id));
      this.pending.delete(message.id);
      if (message.error) reject(new Error(`${message.error.code}: ${message.error.message}`));
      else resolve(message.result);
    } else if (message.method) {
      for (const listener of this.listeners) listener(message.method, message.params);
    }
  }

  /**
   * @template T
   * @param {string} method
   * @param {unknown} [params]
   * @returns {Promise<T>}
   */
  request(method, params) {
    const id = this.nextId++;
    this.child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  /** @param {(method: string, params: any) => void} listener */
  onNotification(listener) {
    this.listeners.push(listener);
  }

  /** Closing stdin asks the server to finish in-flight requests and exit 0. */
  async close() {
    this.child.stdin.end();
    return this.exited;
  }
}

function assert(/** @type {boolean} */ condition, /** @type {string} */ message) {
  if (!condition) throw new Error(`example failed: ${message}`);
}

const home = mkdtempSync(join(tmpdir(), "auth-app-server-example-"));
const server = new AuthAppServer(home);
/** @type {AuthStatusChangedNotification[]} */
const changes = [];
server.onNotification((method, params) => {
  if (method === "authStatusChanged") {
    /** @type {AuthStatusChangedNotification} */
    const change = params;
    changes.push(change);
    console.log(`notification: authStatusChanged -> ${change.authMethod ?? "none"} / ${change.state}`);
  }
});

try {
  /** @type {InitializeResult} */
  const hello = await server.request("initialize", { clientInfo: { name: "node-client-example", version: "0.1.0" } });
  console.log(`connected to ${hello.serverInfo.name} ${hello.serverInfo.version} (protocol ${hello.protocolVersion})`);

  /** @type {GetAuthStatusParams} */
  const poll = { includeToken: true, refreshToken: true };
  /** @type {AuthStatus} */
  let status = await server.request("getAuthStatus", poll);
  console.log(`status before login: ${status.state}`);
  assert(status.state === "signedOut" && status.authMethod === null, "a new home starts signed out");

  /** @type {LoginParams} */
  const login = { type: "apiKey", apiKey: "sk-example-0123456789abcdef" };
  /** @type {LoginResult} */
  const loggedIn = await server.request("login", login);
  assert(loggedIn.type === "apiKey" && loggedIn.warnings.length === 0, "a clean key logs in without warnings");

  // The polling pattern: ask for the token right before each API call; react to the state.
  status = await server.request("getAuthStatus", poll);
  switch (status.state) {
    case "active":
    case "degraded":
      console.log(`status: ${status.state} via ${status.authMethod}; token ${status.authToken ? "present" : "absent"}`);
      break;
    case "needsLogin":
      console.log(`sign in again: ${status.refreshError?.message}`);
      break;
    case "signedOut":
      console.log("not signed in");
      break;
  }
  assert(status.state === "active" && status.authToken === login.apiKey, "the key is handed out");

  // The API said 401 to that token: tell the server and follow its advice.
  /** @type {ReportAuthFailureParams} */
  const failure = { status: 401, body: '{"error":"invalid_api_key"}', rejectedToken: status.authToken };
  /** @type {ReportAuthFailureResult} */
  const advice = await server.request("reportAuthFailure", failure);
  console.log(`reportAuthFailure -> ${advice.action}: ${advice.hint}`);
  assert(advice.action === "apiKeyRejected", "an API key that is rejected is not refreshed");

  await server.request("logout", {});
  status = await server.request("getAuthStatus", {});
  assert(status.state === "signedOut", "logout signs out");
  assert(
    changes.map((c) => c.state).join(",") === "active,signedOut",
    `saw authStatusChanged for login and logout (got ${JSON.stringify(changes)})`,
  );
} finally {
  const code = await server.close();
  rmSync(home, { recursive: true, force: true });
  console.log(`server exited with code ${code}`);
  if (code !== 0) process.exitCode = 1;
}
