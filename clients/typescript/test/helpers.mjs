// What the tests share: the real server binary, the fake OAuth issuer (the tests crate's
// `fake-issuer` binary), a temporary home, and a small local HTTP API.

import { execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const repo = join(packageDir, "..", "..");
const targetDir = process.env.CARGO_TARGET_DIR ?? join(repo, "target");

/** A binary built by cargo: `$envName`, else `target/debug/<name>`. */
function cargoBinary(envName, name, build) {
  const path = process.env[envName] ?? join(targetDir, "debug", name);
  if (!existsSync(path)) throw new Error(`no ${name} at ${path}: run \`${build}\` first (or set ${envName})`);
  return path;
}

export const serverBinary = cargoBinary("AUTH_APP_SERVER_BIN", "auth-app-server", "cargo build -p auth-app-server");
export const issuerBinary = cargoBinary("FAKE_ISSUER_BIN", "fake-issuer", "cargo build -p auth-app-server-tests --bins");

/** An empty folder, removed after the test. */
export function tempHome(t) {
  const home = mkdtempSync(join(tmpdir(), "auth-app-server-client-"));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  return home;
}

/** The fake issuer, approving every device login at once; stopped after the test. */
export async function startIssuer(t) {
  const child = spawn(issuerBinary, ["--approve-after", "0"], { stdio: ["ignore", "pipe", "ignore"] });
  t.after(() => child.kill("SIGKILL"));
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const match = /^issuer: (\S+)/.exec(line);
    if (match) {
      const url = match[1];
      return {
        url,
        clientId: "test-client",
        /** The refresh grants the issuer has answered. */
        async refreshes() {
          const stats = await (await fetch(`${url}/stats`)).json();
          return stats.refreshes;
        },
      };
    }
  }
  throw new Error("the fake issuer ended without saying its URL");
}

/** The server's arguments for `home`, with `issuer` as the provider when given. */
export function serverArgs(home, issuer) {
  const args = ["--home", home, "--log-level", "warn"];
  if (issuer) args.push("--issuer", issuer.url, "--client-id", issuer.clientId);
  return args;
}

/** A server environment without the provider settings of whoever runs the tests. */
export function serverEnv() {
  const env = { ...process.env };
  for (const name of ["RUST_LOG", "AUTH_APP_SERVER_ISSUER", "AUTH_APP_SERVER_CLIENT_ID"]) delete env[name];
  env.NO_PROXY = "127.0.0.1,localhost";
  return env;
}

/**
 * A local HTTP API on 127.0.0.1 that answers each request with `answer(attempt)`: a status
 * (200 `{"ok":true}`, 401 with an `invalid_token` challenge), or `{ status, type, body }`.
 * Records the bearer token of each request.
 */
export async function startApi(t, answer) {
  const api = await startRoutes(t, (_, attempt, all) => answer(all));
  return {
    url: `${api.origin}/resource`,
    get tokens() {
      return api.hits.map((hit) => hit.token);
    },
  };
}

/**
 * A local HTTP server on 127.0.0.1 (its own port: its own origin) that answers each request with
 * `route(path, attempt, all)` (`attempt`: the requests to that path so far, this one included;
 * `all`: to any path): a status (200 `{"ok":true}`, 401 with an `invalid_token` challenge), or
 * `{ status, type, body, headers }`. Records `{ path, token }` of each request in `hits` (`token`
 * "" when it had no `Authorization: Bearer`).
 */
export async function startRoutes(t, route = () => 200) {
  const hits = [];
  const server = createServer((request, response) => {
    const token = (request.headers.authorization ?? "").replace(/^Bearer /, "");
    const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname;
    hits.push({ path, token });
    const answered = route(path, hits.filter((hit) => hit.path === path).length, hits.length);
    const { status, type = "application/json", body, headers: extra = {} } =
      typeof answered === "number"
        ? { status: answered, body: JSON.stringify(answered === 200 ? { ok: true } : { error: "invalid_token" }) }
        : answered;
    const headers = { "content-type": type, ...extra };
    if (status === 401) headers["www-authenticate"] = 'Bearer error="invalid_token"';
    response.writeHead(status, headers);
    response.end(body);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return { origin: `http://127.0.0.1:${server.address().port}`, hits };
}

/** The next `name` notification `client` receives (with `options.credential`: about that credential). */
export function next(client, name, options) {
  return new Promise((resolve) => {
    const stop = client.on(
      name,
      (params) => {
        stop();
        resolve(params);
      },
      options,
    );
  });
}

/** Polls `check` until it is true, for at most `ms`. */
export async function eventually(check, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not true within ${ms} ms: ${check}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A Node project in a temporary folder with the built client in node_modules (a copy: Node
 * resolves a symlinked package from its real place; `version` overrides its package.json's),
 * with `withServer` the platform package whose bin/ holds the real server, and `host` as
 * host.js.
 */
export function clientProject(t, { withServer, host, version }) {
  const root = tempHome(t);
  const client = join(root, "node_modules", "@auth-app-server", "client");
  mkdirSync(client, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
  if (version) manifest.version = version;
  writeFileSync(join(client, "package.json"), JSON.stringify(manifest, null, 2));
  cpSync(join(packageDir, "dist"), join(client, "dist"), { recursive: true });
  if (withServer) {
    const name = `@auth-app-server/server-${process.platform}-${process.arch}`;
    const server = join(root, "node_modules", name);
    mkdirSync(join(server, "bin"), { recursive: true });
    writeFileSync(join(server, "package.json"), JSON.stringify({ name, version: manifest.version, os: [process.platform], cpu: [process.arch] }));
    symlinkSync(serverBinary, join(server, "bin", process.platform === "win32" ? "auth-app-server.exe" : "auth-app-server"));
  }
  writeFileSync(join(root, "host.js"), host);
  return root;
}

/** Runs the project's host.js with a new home as its argument and `env` over serverEnv() (undefined deletes); parses its stdout as JSON. */
export async function runHost(t, root, env = {}) {
  const merged = { ...serverEnv(), ...env };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete merged[name];
  const { stdout } = await promisify(execFile)(process.execPath, [join(root, "host.js"), tempHome(t)], { cwd: root, env: merged });
  return JSON.parse(stdout);
}
