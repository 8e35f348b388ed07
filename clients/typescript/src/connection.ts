// One server process and the JSON-RPC conversation with it: requests matched to answers by id,
// notifications handed on, stderr lines handed to the log. Knows nothing of the methods.

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";

import { RpcError, ServerExitedError } from "./errors.js";
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

export class Connection {
  readonly startedAt = Date.now();
  /** Settles once, when the process has ended or could not start. */
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private exit: Exit | undefined;

  constructor(private readonly options: SpawnOptions) {
    this.child = spawn(options.command, [...options.args], {
      stdio: ["pipe", "pipe", "pipe"],
      env: options.env,
      cwd: options.cwd,
      windowsHide: true,
    });
    this.exited = new Promise<Exit>((resolve) => {
      const finish = (exit: Exit) => {
        if (this.exit) return;
        this.exit = exit;
        const reason = describe(exit);
        for (const [, pending] of this.pending) {
          pending.reject(new ServerExitedError(`${pending.method}: ${reason}`, exit.code, exit.signal));
        }
        this.pending.clear();
        resolve(exit);
      };
      this.child.once("error", (error) => finish({ code: null, signal: null, error }));
      this.child.once("exit", (code, signal) => finish({ code, signal }));
    });
    // A write after the process died fails with EPIPE: its requests are rejected on exit.
    this.child.stdin.on("error", () => {});

    const messages = new LineSplitter((line) => this.receive(line));
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (chunk: string) => messages.push(chunk));
    this.child.stdout.on("end", () => messages.end());

    const log = new LineSplitter((line) => options.onLog?.(line));
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

  request(method: string, params: unknown): Promise<unknown> {
    if (this.exit) {
      return Promise.reject(new ServerExitedError(`${method}: ${describe(this.exit)}`, this.exit.code, this.exit.signal));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { method, resolve, reject });
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
}

function describe(exit: Exit): string {
  if (exit.error) return `auth-app-server could not be started or talked to: ${exit.error.message}`;
  if (exit.signal) return `auth-app-server was ended by ${exit.signal}`;
  return `auth-app-server exited with code ${exit.code}`;
}
