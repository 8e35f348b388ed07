#!/usr/bin/env node
// Makes the npm tarballs of a release:
//
//   node scripts/package-npm.mjs --target <triple> --binary <path> [--out <dir>] [--no-client]
//
// - the platform package `@auth-app-server/server-<platform>-<arch>` (from the target triple),
//   holding the built binary as `bin/auth-app-server` (`.exe` on win32), with `os`, `cpu` (and
//   `libc` on Linux) so that npm installs it only where it runs;
// - the client package `@auth-app-server/client` (clients/typescript, built afresh), whose
//   published package.json names the six platform packages as `optionalDependencies` at its
//   own version. They are added here, not in clients/typescript/package.json: until they are on
//   the registry, no package-lock.json can be in sync with them and `npm ci` would refuse to
//   install the client's development dependencies (and examples/node-client's).
//
// The version is the workspace's (`[workspace.package] version` in Cargo.toml); the script
// refuses to pack when clients/typescript/package.json says another, and, when the binary runs
// here, when its `--version` does. Both packages are checked with scripts/check-npm-pack.mjs
// (what `npm pack --dry-run` lists) before and after packing. Prints the tarballs' paths.
//
// Node.js 18+ and npm; no dependencies. Run it on each platform with that platform's binary
// (cargo can cross-compile only where a linker for the target exists).
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(import.meta.url), "..", "..");
const clientDir = join(root, "clients", "typescript");
const checker = join(root, "scripts", "check-npm-pack.mjs");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/** Rust target triple (with an optional glibc suffix, `x86_64-unknown-linux-gnu.2.28`) → npm's names. */
const TARGETS = {
  "x86_64-unknown-linux-gnu": { platform: "linux", arch: "x64", libc: "glibc" },
  "aarch64-unknown-linux-gnu": { platform: "linux", arch: "arm64", libc: "glibc" },
  "x86_64-apple-darwin": { platform: "darwin", arch: "x64" },
  "aarch64-apple-darwin": { platform: "darwin", arch: "arm64" },
  "x86_64-pc-windows-msvc": { platform: "win32", arch: "x64" },
  "aarch64-pc-windows-msvc": { platform: "win32", arch: "arm64" },
};
export const PLATFORM_PACKAGES = Object.values(TARGETS).map((t) => packageName(t));

function packageName({ platform, arch }) {
  return `@auth-app-server/server-${platform}-${arch}`;
}

function fail(message) {
  console.error(`package-npm: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = { out: join(root, "target", "npm"), client: true };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => argv[++i] ?? fail(`${flag} needs a value`);
    if (flag === "--target") args.target = value();
    else if (flag === "--binary") args.binary = value();
    else if (flag === "--out") args.out = resolve(value());
    else if (flag === "--no-client") args.client = false;
    else if (flag === "--help" || flag === "-h") {
      console.log("usage: node scripts/package-npm.mjs --target <triple> --binary <path> [--out <dir>] [--no-client]");
      console.log(`targets: ${Object.keys(TARGETS).join(", ")} (a glibc suffix such as .2.28 is allowed)`);
      process.exit(0);
    } else fail(`unknown argument ${flag} (see --help)`);
  }
  if (!args.target || !args.binary) fail("--target and --binary are required (see --help)");
  return args;
}

/** `[workspace.package] version` of Cargo.toml. */
function workspaceVersion() {
  const cargo = readFileSync(join(root, "Cargo.toml"), "utf8");
  const section = cargo.split(/^\[/m).find((s) => s.startsWith("workspace.package]"));
  const version = section?.match(/^version\s*=\s*"([^"]+)"/m)?.[1];
  if (!version) fail("no version in [workspace.package] of Cargo.toml");
  return version;
}

function run(command, args, options = {}) {
  return execFileSync(command, args, { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8", ...options });
}

/** `npm pack` of `dir` into `out`; the tarball's path. */
function pack(dir, out, extra = []) {
  const [result] = JSON.parse(run(npm, ["pack", "--json", "--pack-destination", out, ...extra], { cwd: dir }));
  return join(out, result.filename);
}

function check(what, kind, version) {
  execFileSync(process.execPath, [checker, kind, what, "--version", version], { stdio: "inherit" });
}

function platformPackage({ target, binary, out }, version) {
  const triple = target.replace(/\.\d+\.\d+$/, "");
  const spec = TARGETS[triple] ?? fail(`unknown target ${target}; known: ${Object.keys(TARGETS).join(", ")}`);
  const exe = spec.platform === "win32" ? "auth-app-server.exe" : "auth-app-server";
  if (!statSync(binary, { throwIfNoEntry: false })?.isFile()) fail(`no binary at ${binary}`);
  if (spec.platform === process.platform && spec.arch === process.arch) {
    // It runs here: it must say the version it is packed as.
    const said = run(binary, ["--version"]).trim();
    if (said !== `auth-app-server ${version}`) fail(`${binary} --version says "${said}", the workspace is ${version}`);
  }
  const stage = mkdtempSync(join(tmpdir(), "auth-app-server-npm-"));
  try {
    mkdirSync(join(stage, "bin"));
    copyFileSync(binary, join(stage, "bin", exe));
    chmodSync(join(stage, "bin", exe), 0o755);
    const manifest = {
      name: packageName(spec),
      version,
      description: `The auth-app-server binary for ${spec.platform}-${spec.arch} (${triple}), installed by @auth-app-server/client.`,
      license: "MIT OR Apache-2.0",
      os: [spec.platform],
      cpu: [spec.arch],
      ...(spec.libc ? { libc: [spec.libc] } : {}),
      files: [`bin/${exe}`],
      preferUnplugged: true,
    };
    writeFileSync(join(stage, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    writeFileSync(
      join(stage, "README.md"),
      `# ${manifest.name}\n\nThe \`auth-app-server\` binary for ${spec.platform}-${spec.arch}` +
        ` (built for \`${target}\`). Install [\`@auth-app-server/client\`](https://www.npmjs.com/package/@auth-app-server/client)` +
        ` instead: it depends on this package for this platform and finds the binary in it.\n`,
    );
    check(stage, "platform", version);
    return pack(stage, out, ["--ignore-scripts"]);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

function clientPackage({ out }, version) {
  const manifest = JSON.parse(readFileSync(join(clientDir, "package.json"), "utf8"));
  if (manifest.version !== version)
    fail(`clients/typescript/package.json says ${manifest.version}, the workspace (Cargo.toml) ${version}: make them one`);
  // A clean build, so no stale file in dist/ ships; `npm pack` then takes what `files` says.
  rmSync(join(clientDir, "dist"), { recursive: true, force: true });
  const stage = mkdtempSync(join(tmpdir(), "auth-app-server-npm-"));
  try {
    // The build's chatter goes to stderr: stdout is npm pack's JSON. The build needs the
    // client's development dependencies (TypeScript).
    if (!statSync(join(clientDir, "node_modules"), { throwIfNoEntry: false })?.isDirectory())
      execFileSync(npm, ["ci", "--no-audit", "--no-fund"], { cwd: clientDir, stdio: ["ignore", 2, "inherit"] });
    execFileSync(npm, ["run", "build"], { cwd: clientDir, stdio: ["ignore", 2, "inherit"] });
    const built = pack(clientDir, stage, ["--ignore-scripts"]);
    run("tar", ["-xzf", built, "-C", stage]);
    rmSync(built);
    const dir = join(stage, "package");
    const published = { ...manifest };
    published.optionalDependencies = Object.fromEntries([...PLATFORM_PACKAGES].sort().map((name) => [name, version]));
    // What builds and tests the package is not part of it.
    delete published.scripts;
    delete published.devDependencies;
    writeFileSync(join(dir, "package.json"), `${JSON.stringify(published, null, 2)}\n`);
    check(dir, "client", version);
    return pack(dir, out, ["--ignore-scripts"]);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

const args = parseArgs(process.argv.slice(2));
const version = workspaceVersion();
mkdirSync(args.out, { recursive: true });
const tarballs = [platformPackage(args, version)];
if (args.client) tarballs.push(clientPackage(args, version));
for (const tarball of tarballs) {
  check(tarball, tarball.includes("-client-") ? "client" : "platform", version);
  console.log(`${tarball} (${statSync(tarball).size} bytes)`);
}
