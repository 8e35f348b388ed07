// The errors the client rejects with. Each is its own class, so a host can tell them apart
// with `instanceof` and read what it needs without parsing messages.

import { inspect, type InspectOptionsStylized } from "node:util";

import type { AuthFailureAction, AuthStatus, CredentialName, JsonRpcError, ReportAuthFailureResult } from "./protocol/index.js";

/** The server answered a request with a JSON-RPC error (`code` is one of `ErrorCode`). */
export class RpcError extends Error {
  override readonly name = "RpcError";
  readonly code: number;
  readonly data: unknown;

  constructor(method: string, error: JsonRpcError) {
    super(`${method}: ${error.message} (${error.code})`);
    this.code = error.code;
    this.data = error.data;
  }
}

/**
 * The server process ended (or could not be started) before it answered. `stderr` holds the
 * last lines it wrote to stderr (at most 20, each cut at 500 characters), where it says why
 * (a usage error, a bad `config.toml`); the message quotes them too.
 */
export class ServerExitedError extends Error {
  override readonly name = "ServerExitedError";
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stderr: readonly string[];

  constructor(message: string, exitCode: number | null = null, signal: string | null = null, stderr: readonly string[] = []) {
    super(message);
    this.exitCode = exitCode;
    this.signal = signal;
    this.stderr = stderr;
  }
}

/**
 * The server did not answer `method` within `timeoutMs`. For `initialize` (`start()`, or a
 * restart) the process was killed; for any other request the server keeps running and a late
 * answer is dropped.
 */
export class TimeoutError extends Error {
  override readonly name = "TimeoutError";
  readonly method: string;
  readonly timeoutMs: number;

  constructor(method: string, timeoutMs: number, detail = "") {
    super(`${method}: auth-app-server did not answer within ${timeoutMs} ms${detail}`);
    this.method = method;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * No server binary was found: no `binary` option, no `$AUTH_APP_SERVER_BIN`, no platform
 * package (`packageName`, undefined when none is published for `platform`), nothing on `PATH`.
 */
export class ServerNotFoundError extends Error {
  override readonly name = "ServerNotFoundError";
  /** `${process.platform}-${process.arch}`, e.g. `linux-x64`. */
  readonly platform: string;
  readonly packageName: string | undefined;

  constructor(message: string, platform: string, packageName: string | undefined) {
    super(message);
    this.platform = platform;
    this.packageName = packageName;
  }
}

/** The client was disposed. */
export class ClientDisposedError extends Error {
  override readonly name = "ClientDisposedError";

  constructor() {
    super("the auth-app-server client was disposed");
  }
}

/**
 * There is no usable token: `status.state` says why (`signedOut`, `needsLogin`, `degraded`);
 * `credential` is the credential asked (`"default"` when none was named).
 */
export class AuthRequiredError extends Error {
  override readonly name = "AuthRequiredError";
  readonly status: AuthStatus;
  readonly credential: CredentialName;

  constructor(status: AuthStatus, credential: CredentialName = "default") {
    const detail = status.refreshError ? `: ${status.refreshError.message}` : "";
    super(`no usable token${ofCredential(credential)} (state ${status.state})${detail}`);
    this.status = status;
    this.credential = credential;
  }
}

/** Why `fetchWithAuth` did not choose a credential for a URL (see `CredentialChoiceError`). */
export type CredentialChoiceReason = "otherOrigin" | "resourceNotHttp" | "ambiguous";

/**
 * `fetchWithAuth` (or `credentialFor`) refused before sending anything: `otherOrigin`, the named
 * credential's `resource` has another origin than the URL (its token is never sent there);
 * `resourceNotHttp`, the named credential's `resource` is not an http(s) URL, so there is no
 * origin its token may go to (send it yourself, from `getToken({ credential })`);
 * `ambiguous`, no credential was named and several have the resource that covers the URL
 * (name one). `credentials` are the credentials concerned; the message quotes resources and
 * origins, never the URL's path or query (where some APIs put secrets).
 */
export class CredentialChoiceError extends Error {
  override readonly name = "CredentialChoiceError";
  readonly reason: CredentialChoiceReason;
  readonly credentials: readonly CredentialName[];

  private constructor(reason: CredentialChoiceReason, credentials: readonly CredentialName[], message: string) {
    super(message);
    this.reason = reason;
    this.credentials = credentials;
  }

  static otherOrigin(credential: CredentialName, resource: string, origin: string): CredentialChoiceError {
    return new CredentialChoiceError(
      "otherOrigin",
      [credential],
      `credential "${credential}" is for ${resource}: its token is not sent to another origin (${origin}); ` +
        `call a URL of ${new URL(resource).origin}, or name the credential that is for ${origin}`,
    );
  }

  static resourceNotHttp(credential: CredentialName, resource: string): CredentialChoiceError {
    return new CredentialChoiceError(
      "resourceNotHttp",
      [credential],
      `credential "${credential}" is for ${JSON.stringify(resource)}, not an http(s) URL, so fetchWithAuth cannot tell ` +
        `which origin its token may go to; take the token from getToken({ credential: "${credential}" }) and send it yourself`,
    );
  }

  static ambiguous(credentials: readonly CredentialName[], resource: string): CredentialChoiceError {
    const names = credentials.map((name) => `"${name}"`).join(", ");
    return new CredentialChoiceError(
      "ambiguous",
      [...credentials],
      `credentials ${names} are all for ${resource}, the longest resource that covers the URL; ` +
        `name the one to use: fetchWithAuth(url, init, { credential })`,
    );
  }
}

/**
 * The API rejected the token and retrying now cannot help: `action` is the server's advice
 * (`needsLogin`, `refreshDidNotHelp`, `retryLater`, `insufficientScope`, `apiKeyRejected`, or
 * `refreshed`/`alreadyRotated` when the one retry was rejected too), `response` the API's last
 * answer (its body unread).
 *
 * `advice` is the server's whole answer; its `authToken`, when there is one, is a live bearer
 * token, so it is kept out of sight: a non-enumerable property (readable as
 * `error.advice.authToken`, skipped by `JSON.stringify`, `util.inspect`, `console.log` and
 * object spread), and the error's own `util.inspect` and `toJSON` show `authToken: "[redacted]"`
 * even with `showHidden`.
 */
export class AuthFailureError extends Error {
  override readonly name = "AuthFailureError";
  readonly action: AuthFailureAction;
  readonly hint: string | undefined;
  readonly advice: ReportAuthFailureResult;
  readonly response: Response;
  /** The credential whose token the API rejected (`"default"` when none was named). */
  readonly credential: CredentialName;

  constructor(advice: ReportAuthFailureResult, response: Response, credential: CredentialName = "default") {
    const said = `auth-app-server says ${advice.action}${advice.hint ? `: ${advice.hint}` : ""}`;
    super(`the API answered ${response.status}${ofCredential(credential, " to the token")}; ${said}`);
    this.action = advice.action;
    this.hint = advice.hint;
    this.advice = hideToken(advice);
    this.response = response;
    this.credential = credential;
  }

  /** For `JSON.stringify`: what a log needs, never the token. */
  toJSON(): Record<string, unknown> {
    const { name, message, action, hint, credential } = this;
    return { name, message, action, hint, credential, advice: redacted(this.advice), status: this.response.status };
  }

  /** For `util.inspect` and `console.log`: the stack and the fields, the token redacted (with `showHidden` too). */
  [inspect.custom](depth: number, options: InspectOptionsStylized, show: typeof inspect = inspect): string {
    if (depth < 0) return `[${this.name}: ${this.message}]`;
    const fields = { action: this.action, hint: this.hint, credential: this.credential, advice: redacted(this.advice), response: this.response };
    return `${this.stack ?? `${this.name}: ${this.message}`} ${show(fields, { ...options, depth: options.depth === null ? null : (options.depth ?? 2) - 1 })}`;
  }
}

/** A copy of `advice` whose `authToken` is non-enumerable. */
function hideToken(advice: ReportAuthFailureResult): ReportAuthFailureResult {
  const { authToken, ...rest } = advice;
  const copy: ReportAuthFailureResult = { ...rest };
  if (authToken !== undefined) Object.defineProperty(copy, "authToken", { value: authToken, enumerable: false });
  return Object.freeze(copy);
}

/** `advice` for display: the token, when there is one, replaced by a marker. */
function redacted(advice: ReportAuthFailureResult): Record<string, unknown> {
  return advice.authToken === undefined ? { ...advice } : { ...advice, authToken: "[redacted]" };
}

/** ` of credential "NAME"` for a named credential; nothing for the default one (as before names). */
function ofCredential(credential: CredentialName, lead = ""): string {
  return credential === "default" ? "" : `${lead} of credential "${credential}"`;
}
