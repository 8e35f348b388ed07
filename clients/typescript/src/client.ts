// AuthClient: the host's side of auth-app-server. Spawns the server, does the handshake,
// types every request and notification from the protocol's method list, hands out tokens,
// makes API calls that recover from one rejected token (with the credential the URL belongs to,
// or the one named), and restarts the server if it dies.

import { resolveBinary, type ResolvedBinary } from "./binary.js";
import { Connection, type Exit } from "./connection.js";
import { chooseCredential, DEFAULT_CREDENTIAL, type CredentialResource } from "./credential-choice.js";
import { AuthFailureError, AuthRequiredError, ClientDisposedError, RpcError, ServerExitedError, TimeoutError } from "./errors.js";
import { afterRejection, isAuthRejection, milliseconds, restartDelay, restartOptions, type RestartOptions } from "./policy.js";
import { ErrorCode } from "./protocol/index.js";
import type {
  AuthStatus,
  ClientInfo,
  CredentialName,
  CredentialSummary,
  InitializeResult,
  MethodName,
  Methods,
  NotificationName,
  Notifications,
  ReportAuthFailureResult,
  ServerInfo,
} from "./protocol/index.js";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require("../package.json") as { version: string };

/** Every method a host calls (`initialize` is the client's). */
export type RequestMethod = Exclude<MethodName, "initialize">;

/** The params argument of `method`: optional when every member of its params is. */
export type ParamsArgs<M extends MethodName> = {} extends Methods[M]["params"]
  ? [params?: Methods[M]["params"]]
  : [params: Methods[M]["params"]];

/** The params and options arguments of `request(method, …)`. */
export type RequestArgs<M extends MethodName> = {} extends Methods[M]["params"]
  ? [params?: Methods[M]["params"], options?: RequestOptions]
  : [params: Methods[M]["params"], options?: RequestOptions];

export interface RequestOptions {
  /** How long to wait for the answer (including a restart under way); `Infinity`: no limit. Default: the client's `requestTimeoutMs`. */
  timeoutMs?: number;
}

/**
 * Which credential (contract version 3): a name matching `^[a-z0-9][a-z0-9._-]{0,63}$`; left out
 * or `undefined`, `"default"` (for `fetchWithAuth`: the credential the URL belongs to).
 */
export interface CredentialOption {
  credential?: CredentialName;
}

/** The default `startTimeoutMs`: how long `start()` (or a restart) waits for `initialize`'s answer. */
export const DEFAULT_START_TIMEOUT_MS = 10_000;
/**
 * The default `requestTimeoutMs`. A request the server answers from memory takes microseconds;
 * the slowest wait on the provider (discovery, registration and a token request, each bounded
 * by the server's 15 s HTTP timeout, or the 10 s lock timeout) stays well under it.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

export interface AuthClientOptions {
  /**
   * The server binary. Default: `$AUTH_APP_SERVER_BIN`, else `bin/auth-app-server` in the
   * installed platform package (`@auth-app-server/server-${process.platform}-${process.arch}`),
   * else `auth-app-server` on `PATH` (of `env`); none of them → `start()` rejects with
   * `ServerNotFoundError`.
   */
  binary?: string;
  /** Arguments, e.g. `["--home", dir, "--issuer", url, "--client-id", id]`. */
  args?: readonly string[];
  /** The server's environment. Default: this process's. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** How the host names itself in `initialize`. */
  clientInfo?: ClientInfo;
  /** Restart a server that dies, waiting longer after each death in a row; `false`: do not. */
  restart?: RestartOptions | false;
  /**
   * Each line the server logs (stderr), and the client's own notes, prefixed
   * `auth-app-server client:` (a restart or not, a version mismatch). Default: dropped (the
   * last stderr lines are still quoted in a `ServerExitedError`).
   */
  onLog?: (line: string) => void;
  /** How long `dispose()` lets the server finish before killing it. Default 5 s. */
  closeTimeoutMs?: number;
  /**
   * How long `start()` (and each restart) waits for the server to answer `initialize`; past it
   * the process is killed and `start()` rejects with `TimeoutError`. Default 10 s; `Infinity`:
   * no limit.
   */
  startTimeoutMs?: number;
  /**
   * How long `request()` (and so `getToken()`, `fetchWithAuth()`'s calls to the server) waits
   * for an answer before rejecting with `TimeoutError`; the server keeps running. Default 60 s;
   * `Infinity`: no limit; `request(method, params, { timeoutMs })` overrides it per call.
   */
  requestTimeoutMs?: number;
}

/** A server that had died runs again. */
export interface RestartEvent {
  /** How the previous process ended. */
  exitCode: number | null;
  signal: string | null;
  serverInfo: ServerInfo;
}

type Listener = (params: unknown) => void;

export class AuthClient {
  /** Spawns the server and does the handshake. Rejects when the server cannot be started. */
  static async start(options: AuthClientOptions = {}): Promise<AuthClient> {
    const client = new AuthClient(options);
    try {
      await client.current;
    } catch (error) {
      await client.dispose();
      throw error;
    }
    return client;
  }

  /** The connection requests go to: the live one, or the restart under way. */
  private current: Promise<Connection>;
  /** The newest process. */
  private connection: Connection | undefined;
  private info: ServerInfo | undefined;
  private disposed = false;
  private closing: Promise<void> | undefined;
  private restartsInARow = 0;
  /** A server has answered `initialize` once: `start()` has succeeded, and a death is restarted. */
  private everReady = false;
  private warnedVersion: string | undefined;
  private cancelWait: (() => void) | undefined;
  private readonly restart: Required<RestartOptions> | undefined;
  private readonly resolved: ResolvedBinary;
  private readonly closeTimeoutMs: number;
  private readonly startTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly restartListeners = new Set<(event: RestartEvent) => void>();

  private constructor(private readonly options: AuthClientOptions) {
    this.restart = options.restart === false ? undefined : restartOptions(options.restart);
    this.resolved = resolveBinary(options);
    this.closeTimeoutMs = milliseconds("closeTimeoutMs", options.closeTimeoutMs, 5_000, 0);
    this.startTimeoutMs = milliseconds("startTimeoutMs", options.startTimeoutMs, DEFAULT_START_TIMEOUT_MS, 1, true);
    this.requestTimeoutMs = milliseconds("requestTimeoutMs", options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, 1, true);
    this.current = settled(this.launch());
  }

  /** The binary the client runs, and where it was found (`option`, `AUTH_APP_SERVER_BIN`, `platform package`, `PATH`). */
  get binary(): ResolvedBinary {
    return { ...this.resolved };
  }

  /** What the running server said of itself in `initialize`. */
  get serverInfo(): ServerInfo | undefined {
    return this.info;
  }

  /** This package's version (`@auth-app-server/client`). */
  static readonly version: string = version;

  /** The running server's version (`serverInfo.version`). */
  get serverVersion(): string | undefined {
    return this.info?.version;
  }

  /**
   * The server's version differs from the client's (`AuthClient.version`): they are released
   * together at one version, so the host runs a binary from another release (an old
   * `binary`, `$AUTH_APP_SERVER_BIN` or `PATH` entry). `onLog` was told, once per server
   * version.
   */
  get versionMismatch(): boolean {
    return this.info !== undefined && this.info.version !== version;
  }

  /** The running server's process id. */
  get pid(): number | undefined {
    return this.connection?.alive ? this.connection.pid : undefined;
  }

  /**
   * Calls `method`; params and result are typed from the protocol's method list. While the server
   * restarts, waits for it. A server that dies before answering rejects with
   * `ServerExitedError` (the request is not sent again: `login` must not be); an error answer
   * rejects with `RpcError`. No answer within `timeoutMs` (default: the client's
   * `requestTimeoutMs`, 60 s), counted from the call and so including a wait for a restart,
   * rejects with `TimeoutError`.
   */
  async request<M extends RequestMethod>(method: M, ...args: RequestArgs<M>): Promise<Methods[M]["result"]> {
    if (this.disposed) throw new ClientDisposedError();
    const [params, options] = args;
    const timeoutMs = milliseconds("timeoutMs", options?.timeoutMs, this.requestTimeoutMs, 1, true);
    const deadline = Date.now() + timeoutMs;
    const connection = await withTimeout(this.current, timeoutMs, () => new TimeoutError(method, timeoutMs, " (the server was restarting)"));
    const left = Math.max(1, deadline - Date.now());
    return (await connection.request(method, params, timeoutMs === Infinity ? Infinity : left, timeoutMs)) as Methods[M]["result"];
  }

  /**
   * Calls `handler` with each `notification` from the server, until the returned function is
   * called; with `{ credential }`, only with those about that credential (each notification
   * carries `credential`; `"default"` names the default one).
   */
  on<N extends NotificationName>(notification: N, handler: (params: Notifications[N]) => void, options: CredentialOption = {}): () => void {
    const handlers = this.listeners.get(notification) ?? new Set<Listener>();
    this.listeners.set(notification, handlers);
    const wanted = options.credential;
    const all = handler as Listener;
    const listener: Listener =
      wanted === undefined
        ? all
        : (params) => {
            if (credentialOf(params) === wanted) all(params);
          };
    handlers.add(listener);
    return () => handlers.delete(listener);
  }

  /** Calls `handler` each time a server that died has been restarted (poll the status again). */
  onRestart(handler: (event: RestartEvent) => void): () => void {
    this.restartListeners.add(handler);
    return () => this.restartListeners.delete(handler);
  }

  /**
   * The bearer token of `credential` (default: `"default"`) to use now, refreshed first when
   * stale (`getAuthStatus` with `includeToken` and `refreshToken`); `undefined` when there is
   * none (signed out, needs login, or a transient failure with an expired token:
   * `request("getAuthStatus", { credential })` says which).
   */
  async getToken(options: CredentialOption = {}): Promise<string | undefined> {
    return (await this.tokenStatus(options.credential ?? DEFAULT_CREDENTIAL)).authToken;
  }

  /**
   * Every stored credential, sorted by name (`listCredentials`): its name, method, state, and the
   * `issuer` and `resource` it is for; never a token.
   */
  async listCredentials(options?: RequestOptions): Promise<CredentialSummary[]> {
    return (await this.request("listCredentials", {}, options)).credentials;
  }

  /**
   * The credential `fetchWithAuth(url, init, { credential })` uses (`chooseCredential` over
   * `listCredentials`): the one named, else the one whose `resource` is the longest prefix of
   * `url` (same origin, at a `/`), else `"default"`. Rejects with `CredentialChoiceError` where
   * `fetchWithAuth` would: a named credential whose resource has another origin than `url`, or
   * several credentials for the same resource and none named.
   */
  async credentialFor(url: string | URL, options: CredentialOption = {}): Promise<CredentialName> {
    const named = options.credential;
    const target = new URL(url);
    if (named === DEFAULT_CREDENTIAL) return named;
    return chooseCredential(target, await this.credentialResources(), named);
  }

  /**
   * `fetch` with `Authorization: Bearer <token>`. The token is `options.credential`'s, else that
   * of the credential whose `resource` is the longest prefix of the URL, else `"default"`'s
   * (`credentialFor`); a named credential's token never goes to another origin than its
   * resource's (`CredentialChoiceError`, before anything is sent). When the API answers 401 or
   * 403, reports it (`reportAuthFailure`, for that credential) and follows the advice:
   * `refreshed` or `alreadyRotated` → one retry with the new token, never more;
   * `notAuthFailure` → the response as it is; anything else, or a retry that is rejected too →
   * `AuthFailureError` (after reporting the second rejection, which the server answers
   * `refreshDidNotHelp` instead of refreshing again). Without a usable token, rejects with
   * `AuthRequiredError`. The body in `init` must be one fetch can send twice (a string, bytes,
   * `URLSearchParams`, `FormData`; not a stream).
   */
  async fetchWithAuth(input: string | URL, init: RequestInit = {}, options: CredentialOption = {}): Promise<Response> {
    const credential = await this.credentialFor(input, options);
    const status = await this.tokenStatus(credential);
    if (status.authToken === undefined) throw new AuthRequiredError(status, credential);
    // The resource the token itself is for (it may have changed since `listCredentials`, if
    // another process signed the credential in again elsewhere): never to another origin.
    sentOnlyToItsOrigin(input, credential, status.resource);
    let token: string = status.authToken;
    for (let retried = false; ; retried = true) {
      const response = await fetch(input, withBearer(init, token));
      if (!isAuthRejection(response.status)) return response;
      const advice: ReportAuthFailureResult = await this.request("reportAuthFailure", {
        status: response.status,
        body: await bodyStart(response),
        wwwAuthenticate: response.headers.get("www-authenticate") ?? undefined,
        rejectedToken: token,
        ...which(credential),
      });
      const next = afterRejection(advice.action, retried);
      if (next === "return") return response;
      if (next === "fail" || advice.authToken === undefined) throw new AuthFailureError(advice, response, credential);
      await response.body?.cancel();
      sentOnlyToItsOrigin(input, credential, advice.resource);
      token = advice.authToken;
    }
  }

  /** Stops restarting and closes the server (it finishes what is in flight, then exits). */
  dispose(): Promise<void> {
    if (!this.closing) {
      this.disposed = true;
      this.cancelWait?.();
      const connection = this.connection;
      this.closing = connection?.alive ? connection.close(this.closeTimeoutMs).then(() => undefined) : Promise.resolve();
    }
    return this.closing;
  }

  private tokenStatus(credential: CredentialName): Promise<AuthStatus> {
    return this.request("getAuthStatus", { includeToken: true, refreshToken: true, ...which(credential) });
  }

  /**
   * The stored credentials' names and resources, asked each time (another process may sign a
   * credential in again for another resource); none from a server older than `listCredentials`.
   */
  private async credentialResources(): Promise<CredentialResource[]> {
    try {
      return await this.listCredentials();
    } catch (error) {
      if (error instanceof RpcError && error.code === ErrorCode.MethodNotFound) return [];
      throw error;
    }
  }

  private async launch(): Promise<Connection> {
    const connection = new Connection({
      command: this.resolved.path,
      args: this.options.args ?? [],
      env: this.options.env,
      cwd: this.options.cwd,
      onNotification: (method, params) => this.emit(method, params),
      onLog: this.options.onLog,
    });
    this.connection = connection;
    void connection.ended.then((exit) => this.died(connection, exit));
    const clientInfo = this.options.clientInfo ?? { name: "@auth-app-server/client", version };
    try {
      const hello = (await connection.request("initialize", { clientInfo }, this.startTimeoutMs).catch((error: unknown) => {
        if (!(error instanceof TimeoutError)) throw error;
        const tail = connection.stderrTail;
        const said = tail.length > 0 ? `; the end of its stderr:\n${tail.map((line) => `  ${line}`).join("\n")}` : "";
        throw new TimeoutError("initialize", this.startTimeoutMs, ` (startTimeoutMs): the server was killed${said}`);
      })) as InitializeResult;
      connection.ready = true;
      this.everReady = true;
      connection.notify("initialized");
      this.info = hello.serverInfo;
      this.checkVersion();
      return connection;
    } catch (error) {
      connection.kill("SIGKILL");
      throw error;
    }
  }

  /** Warns through `onLog` when the server's version is not the client's (once per server version). */
  private checkVersion(): void {
    const server = this.info?.version;
    if (!this.versionMismatch || server === this.warnedVersion) return;
    this.warnedVersion = server;
    this.options.onLog?.(
      `auth-app-server client: WARN version mismatch: @auth-app-server/client ${version}, but the server ${this.resolved.path} ` +
        `(from ${this.resolved.source}) is ${this.info?.name} ${server}; install the server of the client's release`,
    );
  }

  /** Schedules the next start after `connection` ended, unless it was meant to. */
  private died(connection: Connection, exit: Exit): void {
    if (this.disposed || connection !== this.connection) return;
    const how = `the server ended (code ${exit.code}, signal ${exit.signal})`;
    // The first server never answered: start() rejects with its error, and nothing is restarted.
    if (!this.everReady) {
      this.options.onLog?.(`auth-app-server client: ${how} before answering initialize; not restarting: start() fails`);
      return;
    }
    if (!this.restart) {
      this.options.onLog?.(`auth-app-server client: ${how}; not restarting (restart: false): requests reject with ServerExitedError`);
      const ended = new ServerExitedError(`auth-app-server ended (code ${exit.code}, signal ${exit.signal})`, exit.code, exit.signal, connection.stderrTail);
      this.current = settled(Promise.reject(ended));
      return;
    }
    if (Date.now() - connection.startedAt >= this.restart.stableAfterMs) this.restartsInARow = 0;
    const delay = restartDelay(this.restartsInARow++, this.restart);
    this.options.onLog?.(`auth-app-server client: ${how}; restarting in ${delay} ms`);
    this.current = settled(
      this.wait(delay)
        .then(() => this.launch())
        .then((next) => {
          const event = { exitCode: exit.code, signal: exit.signal, serverInfo: this.info as ServerInfo };
          for (const handler of this.restartListeners) guard(() => handler(event), this.options.onLog);
          return next;
        }),
    );
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.cancelWait = undefined;
        resolve();
      }, ms);
      this.cancelWait = () => {
        clearTimeout(timer);
        reject(new ClientDisposedError());
      };
    });
  }

  private emit(method: string, params: unknown): void {
    for (const listener of this.listeners.get(method) ?? []) guard(() => listener(params), this.options.onLog);
  }
}

/** `promise`, or `timeout()`'s error if it has not settled within `ms` (`Infinity`: no limit). */
function withTimeout<T>(promise: Promise<T>, ms: number, timeout: () => Error): Promise<T> {
  if (ms === Infinity) return promise;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(timeout()), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** `promise`, marked handled: a rejection nobody awaits (a restart that failed while no request waited) is not an error. */
function settled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

/** Runs a host's handler; one that throws must not stop the client reading the server. */
function guard(handler: () => void, onLog: ((line: string) => void) | undefined): void {
  try {
    handler();
  } catch (error) {
    onLog?.(`auth-app-server client: a handler threw: ${String(error)}`);
  }
}

/** The `credential` member of a request: left out for the default credential, as before names. */
function which(credential: CredentialName): { credential?: CredentialName } {
  return credential === DEFAULT_CREDENTIAL ? {} : { credential };
}

/** The credential a notification is about (a server older than names sends none: the default one). */
function credentialOf(params: unknown): unknown {
  const named = typeof params === "object" && params !== null ? (params as { credential?: unknown }).credential : undefined;
  return named ?? DEFAULT_CREDENTIAL;
}

function withBearer(init: RequestInit, token: string): RequestInit {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${token}`);
  return { ...init, headers };
}

/** The start of a response's body (the server tells an auth failure from a WAF page by it), leaving the response readable. */
async function bodyStart(response: Response, limit = 4096): Promise<string | undefined> {
  const body = response.clone().body;
  if (!body) return undefined;
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, limit));
}

/**
 * Throws `CredentialChoiceError` (as `chooseCredential` does) when `resource`, the one the
 * token of named `credential` is for according to the server's answer, has another origin than
 * `input`: checked on the answer that carries the token, not only on `listCredentials`'.
 */
function sentOnlyToItsOrigin(input: string | URL, credential: CredentialName, resource: string | undefined): void {
  if (resource === undefined) return;
  chooseCredential(new URL(input), [{ credential, resource }], credential);
}
