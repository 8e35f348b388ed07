// One server process and the JSON-RPC conversation with it: requests matched to answers by id,
// notifications handed on, stderr lines handed to the log. Knows nothing of the methods.

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";

import { RpcError, ServerExitedError, TimeoutError } from "./errors.js";
import { LineSplitter, frame } from "./lines.js";
import type { JsonRpcError } from "./protocol/index.js";

export interface SpawnOptions {
  command: string;
  args: readonly string[];
  env: Record<string, string | undefined> | undefined;
  cwd: string | undefined;
  onNotification: (method: string, params: unknown) => void;
  onLog: ((line: string) => void) | undefined;
}

export interface Exit {
  code: number | null;
  signal: string | null;
  /** Set when the process could not be started (or its pipes failed). */
  error?: Error;
}

interface Pending {
  method: string;
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
}

interface Incoming {
  id?: unknown;
  method?: unknown;
  params?: unknown;
  result?: unknown;
  error?: JsonRpcError;
}

/** How many of the last stderr lines a connection keeps for its errors, and how long each may be. */
export const STDERR_TAIL_LINES = 20;
export const STDERR_LINE_CHARS = 500;

export class Connection {
  readonly startedAt = Date.now();
  /** The server answered `initialize`. */
  ready = false;
  /** Settles once, as soon as the process has ended or could not start. */
  readonly ended: Promise<Exit>;
  /** Settles once, after `ended`, when what it wrote is read and its unanswered requests are rejected. */
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private exit: Exit | undefined;
  /** The last lines of stderr (bounded): the reason a server gives when it exits at once. */
  private readonly tail: string[] = [];

  constructor(private readonly options: SpawnOptions) {
    this.child = spawn(options.command, [...options.args], {
      stdio: ["pipe", "pipe", "pipe"],
      env: options.env,
      cwd: options.cwd,
      windowsHide: true,
    });
    // Node may report the exit before it has read the last of stdout (answers) and stderr (the
    // reason): the exit is acted on once both have ended, or 200 ms after it (a process the
    // server started may hold them open).
    const drained = Promise.all([streamEnd(this.child.stdout), streamEnd(this.child.stderr)]);
    this.ended = new Promise<Exit>((resolve) => {
      this.child.once("error", (error) => resolve({ code: null, signal: null, error }));
      this.child.once("exit", (code, signal) => resolve({ code, signal }));
    });
    this.exited = new Promise<Exit>((resolve) => {
      const finish = (exit: Exit) => {
        if (this.exit) return;
        this.exit = exit;
        for (const [, pending] of this.pending) pending.reject(this.exitedError(pending.method));
        this.pending.clear();
        resolve(exit);
      };
      this.child.once("error", (error) => finish({ code: null, signal: null, error }));
      this.child.once("exit", (code, signal) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, 200)));
        void Promise.race([drained, late]).then(() => {
          clearTimeout(timer);
          finish({ code, signal });
        });
      });
    });
    // A write after the process died fails with EPIPE: its requests are rejected on exit.
    this.child.stdin.on("error", () => {});

    const messages = new LineSplitter((line) => this.receive(line));
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (chunk: string) => messages.push(chunk));
    this.child.stdout.on("end", () => messages.end());

    const log = new LineSplitter((line) => {
      this.tail.push(line.length > STDERR_LINE_CHARS ? `${line.slice(0, STDERR_LINE_CHARS)}…` : line);
      if (this.tail.length > STDERR_TAIL_LINES) this.tail.shift();
      options.onLog?.(line);
    });
    this.child.stderr.setEncoding("utf8");
    this.child.stderr.on("data", (chunk: string) => log.push(chunk));
    this.child.stderr.on("end", () => log.end());
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** The last lines the server wrote to stderr (at most `STDERR_TAIL_LINES`). */
  get stderrTail(): readonly string[] {
    return [...this.tail];
  }

  /**
   * Sends `method` and settles with its answer; after `timeoutMs` (unless `Infinity`) rejects
   * with `TimeoutError` and forgets the request (a late answer is dropped). The error names
   * `reportedMs`: the caller's whole timeout, of which `timeoutMs` is what was left.
   */
  request(method: string, params: unknown, timeoutMs = Infinity, reportedMs = timeoutMs): Promise<unknown> {
    if (this.exit) return Promise.reject(this.exitedError(method));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => clearTimeout(timer);
      this.pending.set(id, {
        method,
        resolve: (result) => (done(), resolve(result)),
        reject: (error) => (done(), reject(error)),
      });
      if (timeoutMs !== Infinity) {
        timer = setTimeout(() => {
          if (this.pending.delete(id)) reject(new TimeoutError(method, reportedMs));
        }, timeoutMs);
      }
      this.write(params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params });
    });
  }

  notify(method: string, params?: unknown): void {
    if (this.exit) return;
    this.write(params === undefined ? { jsonrpc: "2.0", method } : { jsonrpc: "2.0", method, params });
  }

  /** Closes stdin (the server answers what is in flight and exits 0); kills it after `graceMs`. */
  async close(graceMs: number): Promise<Exit> {
    this.child.stdin.end();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), graceMs);
      timer.unref();
    });
    const first = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (first === "late") this.child.kill("SIGKILL");
    return this.exited;
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    this.child.kill(signal);
  }

  private write(message: object): void {
    this.child.stdin.write(frame(message));
  }

  private receive(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      this.options.onLog?.(`auth-app-server client: not JSON on stdout: ${line.slice(0, 200)}`);
      return;
    }
    for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
      if (typeof message === "object" && message !== null) this.dispatch(message as Incoming);
    }
  }

  private dispatch(message: Incoming): void {
    if (typeof message.method === "string" && message.id === undefined) {
      this.options.onNotification(message.method, message.params);
      return;
    }
    const pending = typeof message.id === "number" ? this.pending.get(message.id) : undefined;
    if (!pending) {
      if (message.error) this.options.onLog?.(`auth-app-server client: error without a request: ${message.error.message}`);
      return;
    }
    this.pending.delete(message.id as number);
    if (message.error) pending.reject(new RpcError(pending.method, message.error));
    else pending.resolve(message.result);
  }

  /** `method` could not be answered: how the process ended, and the end of its stderr. */
  private exitedError(method: string): ServerExitedError {
    const exit = this.exit as Exit;
    const before = this.ready ? "" : " before answering initialize";
    const tail = this.tail.length > 0 ? `; the end of its stderr:\n${this.tail.map((line) => `  ${line}`).join("\n")}` : "";
    return new ServerExitedError(`${method}: ${describe(exit)}${before}${tail}`, exit.code, exit.signal, [...this.tail]);
  }
}

function describe(exit: Exit): string {
  if (exit.error) return `auth-app-server could not be started or talked to: ${exit.error.message}`;
  if (exit.signal) return `auth-app-server was ended by ${exit.signal}`;
  return `auth-app-server exited with code ${exit.code}`;
}

/** Settles when `stream` has ended or closed (or failed). */
function streamEnd(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve) => {
    stream.once("end", resolve);
    stream.once("close", resolve);
    stream.once("error", () => resolve());
  });
}
