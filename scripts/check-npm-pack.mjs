#!/usr/bin/env node
// Checks what an npm package would ship, as `npm pack --dry-run` lists it:
//
//   node scripts/check-npm-pack.mjs client|platform <package folder or .tgz> [--version V]
//
// Fails (exit 1, naming the file) on any file that is not expected, and on an expected one
// that is missing; checks the manifest too (name, version, and for the client the six
// platform packages as optionalDependencies at its version; for a platform package os/cpu/files).
// Used by scripts/package-npm.mjs and by CI (.ci/run) on the tarballs it made.
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";

const [kind, what, ...rest] = process.argv.slice(2);
const version = rest[0] === "--version" ? rest[1] : undefined;
if (!["client", "platform"].includes(kind) || !what) {
  console.error("usage: node scripts/check-npm-pack.mjs client|platform <package folder or .tgz> [--version V]");
  process.exit(64);
}
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const target = resolve(what);
const args = what.endsWith(".tgz") ? ["pack", "--dry-run", "--json", "--ignore-scripts", target] : ["pack", "--dry-run", "--json", "--ignore-scripts"];
const [listing] = JSON.parse(
  execFileSync(npm, args, { cwd: what.endsWith(".tgz") ? undefined : target, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }),
);
const files = listing.files.map((f) => f.path).sort();
const problems = [];

// Every file must match one of these; every `required` one must be there.
let allowed;
let required;
if (kind === "client") {
  allowed = [/^package\.json$/, /^README\.md$/, /^dist\/([\w-]+\/)*[\w.-]+\.(js|d\.ts)$/];
  required = ["package.json", "README.md", "dist/index.js", "dist/index.d.ts", "dist/vscode-jsonrpc.js", "dist/vscode-jsonrpc.d.ts"];
  // Tests, sources, build scripts and configuration stay home.
  for (const file of files) if (/(^|\/)(test|src|scripts)\/|tsconfig|\.test\.|\.tgz$|\.map$/.test(file)) problems.push(`should not ship: ${file}`);
} else {
  const exe = /^@auth-app-server\/server-win32-/.test(listing.name) ? "bin/auth-app-server.exe" : "bin/auth-app-server";
  allowed = [/^package\.json$/, /^README\.md$/, new RegExp(`^${exe.replace(".", "\\.")}$`)];
  required = ["package.json", exe];
}
for (const file of files) if (!allowed.some((re) => re.test(file))) problems.push(`unexpected file: ${file}`);
for (const file of required) if (!files.includes(file)) problems.push(`missing: ${file}`);

// The manifest, read from the package itself.
const manifest = JSON.parse(
  what.endsWith(".tgz")
    ? execFileSync("tar", ["-xzOf", target, "package/package.json"], { encoding: "utf8" })
    : execFileSync(process.execPath, ["-e", "process.stdout.write(require('fs').readFileSync('package.json','utf8'))"], { cwd: target, encoding: "utf8" }),
);
if (version && manifest.version !== version) problems.push(`version ${manifest.version}, expected ${version}`);
if (kind === "client") {
  if (manifest.name !== "@auth-app-server/client") problems.push(`name ${manifest.name}`);
  const optional = manifest.optionalDependencies ?? {};
  const expected = [];
  for (const platform of ["darwin", "linux", "win32"])
    for (const arch of ["arm64", "x64"]) expected.push(`@auth-app-server/server-${platform}-${arch}`);
  if (JSON.stringify(Object.keys(optional).sort()) !== JSON.stringify(expected))
    problems.push(`optionalDependencies ${JSON.stringify(Object.keys(optional))}, expected the six ${JSON.stringify(expected)}`);
  for (const [name, wanted] of Object.entries(optional))
    if (wanted !== manifest.version) problems.push(`optionalDependencies: ${name} at ${wanted}, not the client's ${manifest.version}`);
  if (manifest.dependencies && Object.keys(manifest.dependencies).length > 0) problems.push("the client has no runtime dependencies");
} else {
  const m = /^@auth-app-server\/server-(linux|darwin|win32)-(x64|arm64)$/.exec(manifest.name ?? "");
  if (!m) problems.push(`name ${manifest.name}`);
  else {
    if (JSON.stringify(manifest.os) !== JSON.stringify([m[1]])) problems.push(`os ${JSON.stringify(manifest.os)}`);
    if (JSON.stringify(manifest.cpu) !== JSON.stringify([m[2]])) problems.push(`cpu ${JSON.stringify(manifest.cpu)}`);
  }
  if (!Array.isArray(manifest.files) || manifest.files.length !== 1) problems.push(`files ${JSON.stringify(manifest.files)}`);
  if (manifest.scripts) problems.push("a platform package runs no install scripts");
  const binary = listing.files.find((f) => f.path.startsWith("bin/"));
  if (binary && !/^(win32)/.test(m?.[1] ?? "") && (binary.mode & 0o111) === 0) problems.push(`${binary.path} is not executable`);
}

if (problems.length > 0) {
  console.error(`check-npm-pack: ${what} (${kind}):\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
const shown = files.length <= 8 ? files.join(", ") : `${files.slice(0, 8).join(", ")}, …`;
console.log(`check-npm-pack: ${listing.name}@${listing.version} ok: ${files.length} files, ${listing.size} bytes packed (${shown})`);
