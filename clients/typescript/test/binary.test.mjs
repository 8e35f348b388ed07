// Finding the server binary: the `binary` option, then $AUTH_APP_SERVER_BIN, then the
// installed platform package (@auth-app-server/server-<platform>-<arch>), then PATH; an error
// naming the platform, the package and the option when there is none. The order is checked
// with a stand-in resolver; then a temporary Node project with the client and a platform
// package holding the real server runs it end to end with nothing configured.

import assert from "node:assert/strict";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { ServerNotFoundError, resolveBinary, serverPackageName } from "@auth-app-server/client";

import { clientProject, runHost, tempHome } from "./helpers.mjs";

const here = `${process.platform}-${process.arch}`;
const exe = process.platform === "win32" ? "auth-app-server.exe" : "auth-app-server";

/** A folder holding an executable `name` (an empty script: it is found, never run). */
function folderWith(t, name = exe) {
  const folder = tempHome(t);
  const path = join(folder, name);
  writeFileSync(path, "#!/bin/sh\n");
  chmodSync(path, 0o755);
  return { folder, path };
}

/** A platform package laid out as npm installs it; `resolvePackage` finds its package.json. */
function platformPackage(t, { withBinary = true, platform = process.platform, arch = process.arch } = {}) {
  const root = join(tempHome(t), "node_modules", serverPackageName(platform, arch));
  mkdirSync(join(root, "bin"), { recursive: true });
  writeFileSync(join(root, "package.json"), JSON.stringify({ name: serverPackageName(platform, arch), version: "0.1.0" }));
  const name = platform === "win32" ? "auth-app-server.exe" : "auth-app-server";
  if (withBinary) writeFileSync(join(root, "bin", name), "");
  const resolvePackage = (request) => {
    if (request !== `${serverPackageName(platform, arch)}/package.json`) throw new Error(`unexpected ${request}`);
    return join(root, "package.json");
  };
  return { root, binary: join(root, "bin", name), resolvePackage };
}

const notInstalled = () => {
  throw Object.assign(new Error("Cannot find module"), { code: "MODULE_NOT_FOUND" });
};

test("the order: option, AUTH_APP_SERVER_BIN, platform package, PATH", (t) => {
  const onPath = folderWith(t);
  const pkg = platformPackage(t);
  const env = { PATH: onPath.folder };
  const all = { hostEnv: { AUTH_APP_SERVER_BIN: "/from/env/auth-app-server" }, resolvePackage: pkg.resolvePackage };

  assert.deepEqual(resolveBinary({ binary: "/from/option", env }, all), { path: "/from/option", source: "option" });
  assert.deepEqual(resolveBinary({ env }, all), { path: "/from/env/auth-app-server", source: "AUTH_APP_SERVER_BIN" });
  assert.deepEqual(resolveBinary({ env }, { ...all, hostEnv: { AUTH_APP_SERVER_BIN: "" } }), { path: pkg.binary, source: "platform package" });
  assert.deepEqual(resolveBinary({ env }, { hostEnv: {}, resolvePackage: notInstalled }), { path: onPath.path, source: "PATH" });
  // A package without its binary (a broken install) is passed over for PATH.
  const broken = platformPackage(t, { withBinary: false });
  assert.deepEqual(resolveBinary({ env }, { hostEnv: {}, resolvePackage: broken.resolvePackage }), { path: onPath.path, source: "PATH" });
});

test("none found: the error names the platform, the package and the option", (t) => {
  const empty = tempHome(t);
  const error = (() => {
    try {
      resolveBinary({ env: { PATH: empty } }, { hostEnv: {}, resolvePackage: notInstalled });
    } catch (e) {
      return e;
    }
  })();
  assert.ok(error instanceof ServerNotFoundError, String(error));
  assert.equal(error.platform, here);
  assert.equal(error.packageName, `@auth-app-server/server-${here}`);
  assert.match(error.message, new RegExp(`not found for ${here}`));
  assert.match(error.message, new RegExp(`the platform package @auth-app-server/server-${here} is not installed`));
  assert.match(error.message, /no `binary` option, AUTH_APP_SERVER_BIN is not set/);
  assert.match(error.message, /pass `binary` to AuthClient\.start/);

  const broken = platformPackage(t, { withBinary: false });
  assert.throws(
    () => resolveBinary({ env: { PATH: empty } }, { hostEnv: {}, resolvePackage: broken.resolvePackage }),
    new RegExp(`installed at .* but has no bin/${exe}`),
  );

  const elsewhere = (() => {
    try {
      resolveBinary({ env: { PATH: empty } }, { platform: "freebsd", arch: "x64", hostEnv: {}, resolvePackage: notInstalled });
    } catch (e) {
      return e;
    }
  })();
  assert.ok(elsewhere instanceof ServerNotFoundError);
  assert.equal(elsewhere.packageName, undefined);
  assert.match(elsewhere.message, /no platform package is published for freebsd-x64 \(there are linux-x64, linux-arm64/);
});

test("each platform's package and binary name", (t) => {
  for (const platform of ["linux", "darwin", "win32"]) {
    for (const arch of ["x64", "arm64"]) {
      const pkg = platformPackage(t, { platform, arch });
      const found = resolveBinary({ env: { PATH: "" } }, { platform, arch, hostEnv: {}, resolvePackage: pkg.resolvePackage });
      assert.equal(found.source, "platform package");
      assert.equal(found.path, join(pkg.root, "bin", platform === "win32" ? "auth-app-server.exe" : "auth-app-server"));
      assert.ok(pkg.root.endsWith(join("@auth-app-server", `server-${platform}-${arch}`)));
    }
  }
  // Windows spells it Path.
  const onPath = folderWith(t, "auth-app-server.exe");
  const found = resolveBinary({ env: { Path: onPath.folder } }, { platform: "win32", arch: "x64", hostEnv: {}, resolvePackage: notInstalled });
  assert.deepEqual(found, { path: onPath.path, source: "PATH" });
});

const host = `const { AuthClient } = require("@auth-app-server/client");
(async () => {
  try {
    const client = await AuthClient.start({ args: ["--home", process.argv[2], "--log-level", "warn"] });
    await client.request("login", { type: "apiKey", apiKey: "sk-platform-package-0123456789" });
    const token = await client.getToken();
    console.log(JSON.stringify({ binary: client.binary, token }));
    await client.dispose();
  } catch (error) {
    console.log(JSON.stringify({ error: { name: error.name, message: error.message, platform: error.platform, packageName: error.packageName } }));
  }
})();
`;

/** Runs `host` in the project with no AUTH_APP_SERVER_BIN and a PATH without the server. */
function runUnconfigured(t, root) {
  return runHost(t, root, { AUTH_APP_SERVER_BIN: undefined, PATH: tempHome(t) });
}

test("a project with the platform package runs the server with nothing configured", async (t) => {
  const root = clientProject(t, { withServer: true, host });
  const outcome = await runUnconfigured(t, root);
  assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
  assert.equal(outcome.binary.source, "platform package");
  assert.equal(outcome.binary.path, join(root, "node_modules", "@auth-app-server", `server-${here}`, "bin", exe));
  assert.equal(outcome.token, "sk-platform-package-0123456789");
});

test("a project without it: start() rejects with ServerNotFoundError", async (t) => {
  const root = clientProject(t, { withServer: false, host });
  const outcome = await runUnconfigured(t, root);
  assert.equal(outcome.error?.name, "ServerNotFoundError", JSON.stringify(outcome));
  assert.equal(outcome.error.platform, here);
  assert.equal(outcome.error.packageName, `@auth-app-server/server-${here}`);
  assert.match(outcome.error.message, /is not installed/);
  assert.match(outcome.error.message, /`binary`/);
});
