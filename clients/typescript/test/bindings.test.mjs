// The package ships the protocol types the server binary generates, and `npm pack` makes a
// tarball a host installs and uses.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { packageDir, serverBinary } from "./helpers.mjs";

function scratch(t) {
  const dir = mkdtempSync(join(tmpdir(), "auth-app-server-client-pack-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("the bundled protocol types are what the server binary generates", (t) => {
  const out = scratch(t);
  execFileSync(serverBinary, ["generate-json-schema", "--out", out], { stdio: "ignore" });
  const generated = join(out, "typescript");
  const bundled = join(packageDir, "src", "protocol");
  const names = readdirSync(generated).sort();
  assert.deepEqual(readdirSync(bundled).sort(), names, "run `npm run build` (it copies schema/typescript)");
  for (const name of names) {
    assert.equal(
      readFileSync(join(bundled, name), "utf8"),
      readFileSync(join(generated, name), "utf8"),
      `src/protocol/${name} is stale: regenerate schema/ (generate-json-schema --out schema), then \`npm run build\``,
    );
  }
  assert.ok(names.includes("Protocol.ts") && names.includes("ErrorCode.ts"));
});

test("npm pack makes a tarball a host installs, requires, imports and type-checks", { timeout: 120_000 }, (t) => {
  const dir = scratch(t);
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  // --ignore-scripts: the package is built already; packing must not need the repository.
  const packed = JSON.parse(execFileSync(npm, ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], { cwd: packageDir, encoding: "utf8" }));
  const files = packed[0].files.map((file) => file.path);
  for (const expected of ["dist/index.js", "dist/index.d.ts", "dist/vscode-jsonrpc.d.ts", "dist/protocol/Protocol.d.ts", "README.md", "package.json"]) {
    assert.ok(files.includes(expected), `${expected} in ${files.join(", ")}`);
  }
  assert.ok(!files.some((file) => file.startsWith("src/") || file.startsWith("test/")), files.join(", "));

  const host = join(dir, "host");
  execFileSync("mkdir", ["-p", host]);
  writeFileSync(join(host, "package.json"), JSON.stringify({ name: "host", private: true }));
  execFileSync(npm, ["install", "--offline", "--no-audit", "--no-fund", join(dir, packed[0].filename)], { cwd: host, stdio: "ignore" });

  const required = execFileSync(process.execPath, ["-e", 'const c = require("@auth-app-server/client"); console.log(typeof c.AuthClient, c.ErrorCode.NotInitialized)'], { cwd: host, encoding: "utf8" });
  assert.equal(required.trim(), "function -32002");
  const imported = execFileSync(process.execPath, ["--input-type=module", "-e", 'import { AuthClient } from "@auth-app-server/client"; import { newlineTransport } from "@auth-app-server/client/vscode-jsonrpc"; console.log(typeof AuthClient, typeof newlineTransport)'], { cwd: host, encoding: "utf8" });
  assert.equal(imported.trim(), "function function");

  writeFileSync(
    join(host, "host.ts"),
    [
      'import { AuthClient, type AuthStatus } from "@auth-app-server/client";',
      "export async function poll(client: AuthClient): Promise<AuthStatus> {",
      '  return client.request("getAuthStatus", { includeToken: true });',
      "}",
      "export async function wrong(client: AuthClient): Promise<void> {",
      "  // @ts-expect-error: a misspelled member",
      '  await client.request("getAuthStatus", { includeTokens: true });',
      "}",
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(host, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, module: "node16", moduleResolution: "node16", target: "es2022", lib: ["es2022"], types: ["node"], typeRoots: [join(packageDir, "node_modules", "@types")] },
      files: ["host.ts"],
    }),
  );
  const tsc = join(packageDir, "node_modules", "typescript", "bin", "tsc");
  execFileSync(process.execPath, [tsc, "-p", host], { cwd: host, encoding: "utf8" });

  // Many VS Code extensions still resolve modules the Node 10 way (no `exports`): the subpath's
  // types come from `typesVersions` there.
  writeFileSync(
    join(host, "legacy.ts"),
    [
      'import { AuthClient } from "@auth-app-server/client";',
      'import { newlineTransport } from "@auth-app-server/client/vscode-jsonrpc";',
      "export const used = [AuthClient, newlineTransport];",
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(host, "tsconfig.legacy.json"),
    JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, module: "commonjs", moduleResolution: "node10", target: "es2022", lib: ["es2022"], types: ["node"], typeRoots: [join(packageDir, "node_modules", "@types")] },
      files: ["legacy.ts"],
    }),
  );
  execFileSync(process.execPath, [tsc, "-p", join(host, "tsconfig.legacy.json")], { cwd: host, encoding: "utf8" });
});
