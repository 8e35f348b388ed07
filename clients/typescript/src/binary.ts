// Where the server binary is: the `binary` option, else $AUTH_APP_SERVER_BIN, else the
// platform package npm installed with the client (@auth-app-server/server-<platform>-<arch>),
// else `auth-app-server` on PATH.

import { accessSync, constants, statSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";

import { ServerNotFoundError } from "./errors.js";

/** The platforms a server package is published for, as `${process.platform}-${process.arch}`. */
export const SERVER_PACKAGE_PLATFORMS: readonly string[] = [
  "linux-x64",
  "linux-arm64",
  "darwin-x64",
  "darwin-arm64",
  "win32-x64",
  "win32-arm64",
];

/** Where a binary was found. */
export type BinarySource = "option" | "AUTH_APP_SERVER_BIN" | "platform package" | "PATH";

export interface ResolvedBinary {
  path: string;
  source: BinarySource;
}

export interface ResolveContext {
  platform?: string;
  arch?: string;
  /** `require.resolve` from the client's own module (the platform package is its optional dependency). */
  resolvePackage?: (request: string) => string;
  /** The variables to read `AUTH_APP_SERVER_BIN` from. Default: `process.env`. */
  hostEnv?: Record<string, string | undefined>;
}

/** The npm package holding the server binary for `platform`-`arch`, e.g. `@auth-app-server/server-linux-x64`. */
export function serverPackageName(platform: string = process.platform, arch: string = process.arch): string {
  return `@auth-app-server/server-${platform}-${arch}`;
}

/** The binary's file name on `platform`. */
function binaryName(platform: string): string {
  return platform === "win32" ? "auth-app-server.exe" : "auth-app-server";
}

/**
 * Finds the server binary, in this order: `options.binary`; `$AUTH_APP_SERVER_BIN`; `bin/<name>`
 * in the installed platform package; `auth-app-server` on the `PATH` of `options.env` (the
 * server's environment; default this process's). Throws `ServerNotFoundError` when none is
 * there, naming the platform, the package and the option.
 */
export function resolveBinary(
  options: { binary?: string | undefined; env?: Record<string, string | undefined> | undefined },
  context: ResolveContext = {},
): ResolvedBinary {
  if (options.binary !== undefined && options.binary !== "") return { path: options.binary, source: "option" };
  const fromEnv = (context.hostEnv ?? process.env)["AUTH_APP_SERVER_BIN"];
  if (fromEnv !== undefined && fromEnv !== "") return { path: fromEnv, source: "AUTH_APP_SERVER_BIN" };

  const platform = context.platform ?? process.platform;
  const arch = context.arch ?? process.arch;
  const name = binaryName(platform);
  const target = `${platform}-${arch}`;
  const supported = SERVER_PACKAGE_PLATFORMS.includes(target);
  const packageName = serverPackageName(platform, arch);
  let packageProblem: string | undefined;
  if (supported) {
    const resolvePackage = context.resolvePackage ?? ((request: string) => require.resolve(request));
    let manifest: string | undefined;
    try {
      manifest = resolvePackage(`${packageName}/package.json`);
    } catch {
      packageProblem = `the platform package ${packageName} is not installed`;
    }
    if (manifest !== undefined) {
      const path = join(dirname(manifest), "bin", name);
      if (isFile(path)) return { path, source: "platform package" };
      packageProblem = `the platform package ${packageName} is installed at ${dirname(manifest)} but has no bin/${name}`;
    }
  } else {
    packageProblem = `no platform package is published for ${target} (there are ${SERVER_PACKAGE_PLATFORMS.join(", ")})`;
  }

  const pathVariable = pathOf(options.env ?? process.env, platform);
  for (const folder of (pathVariable ?? "").split(platform === "win32" ? ";" : delimiter)) {
    if (folder === "") continue;
    const path = join(folder, name);
    if (isExecutable(path, platform)) return { path, source: "PATH" };
  }

  throw new ServerNotFoundError(
    `auth-app-server was not found for ${target}: no \`binary\` option, AUTH_APP_SERVER_BIN is not set, ` +
      `${packageProblem}, and there is no ${name} on PATH. ` +
      (supported
        ? `Install ${packageName} (npm installs it with @auth-app-server/client unless optional dependencies are omitted), or pass \`binary\` to AuthClient.start.`
        : `Build the server for this platform (cargo install) and pass its path as \`binary\` to AuthClient.start.`),
    target,
    supported ? packageName : undefined,
  );
}

/** `PATH` in `env` (any case on Windows, where it is usually `Path`). */
function pathOf(env: Record<string, string | undefined>, platform: string): string | undefined {
  if (platform !== "win32") return env["PATH"];
  const key = Object.keys(env).find((name) => name.toUpperCase() === "PATH");
  return key === undefined ? undefined : env[key];
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isExecutable(path: string, platform: string): boolean {
  if (!isFile(path)) return false;
  if (platform === "win32") return true;
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
