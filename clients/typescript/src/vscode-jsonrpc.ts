// For hosts that already speak JSON-RPC through vscode-jsonrpc (VS Code extensions): a
// MessageReader and a MessageWriter with auth-app-server's framing, one JSON message per
// line, in place of vscode-jsonrpc's `Content-Length` headers. vscode-jsonrpc is not a
// dependency: the two objects have the shape its `createMessageConnection` takes.
//
//   import { spawn } from "node:child_process";
//   import { createMessageConnection } from "vscode-jsonrpc/node";
//   import { newlineTransport } from "@auth-app-server/client/vscode-jsonrpc";
//
//   const server = spawn("auth-app-server", [], { stdio: ["pipe", "pipe", "inherit"] });
//   const connection = createMessageConnection(...newlineTransport(server.stdout, server.stdin));
//   connection.listen();
//   await connection.sendRequest("initialize", { clientInfo: { name: "my-extension", version: "1.0.0" } });

import type { Readable, Writable } from "node:stream";

import { LineSplitter, frame } from "./lines.js";

/** vscode-jsonrpc's `Disposable`. */
export interface Disposable {
  dispose(): void;
}

/** vscode-jsonrpc's `Event<T>`. */
export type Event<T> = (listener: (e: T) => unknown, thisArgs?: unknown, disposables?: Disposable[]) => Disposable;

/** A JSON-RPC message (vscode-jsonrpc's `Message`). */
export interface Message {
  jsonrpc: string;
}

/** vscode-jsonrpc's `MessageReader`. */
export interface NewlineMessageReader extends Disposable {
  readonly onError: Event<Error>;
  readonly onClose: Event<void>;
  readonly onPartialMessage: Event<{ readonly messageToken: number; readonly waitingTime: number }>;
  listen(callback: (message: Message) => void): Disposable;
}

/** vscode-jsonrpc's `MessageWriter`. */
export interface NewlineMessageWriter extends Disposable {
  readonly onError: Event<[Error, Message | undefined, number | undefined]>;
  readonly onClose: Event<void>;
  write(message: Message): Promise<void>;
  end(): void;
}

/** Reads one JSON message per line from `input` (the server's stdout). */
export function newlineMessageReader(input: Readable): NewlineMessageReader {
  const errors = new Emitter<Error>();
  const closes = new Emitter<void>();
  const partials = new Emitter<{ readonly messageToken: number; readonly waitingTime: number }>();
  let callback: ((message: Message) => void) | undefined;
  const lines = new LineSplitter((line) => {
    try {
      callback?.(JSON.parse(line) as Message);
    } catch (error) {
      errors.fire(error instanceof Error ? error : new Error(String(error)));
    }
  });
  const onData = (chunk: string) => lines.push(chunk);
  const onEnd = () => {
    lines.end();
    closes.fire();
  };
  const onError = (error: Error) => errors.fire(error);
  const detach = () => {
    callback = undefined;
    input.off("data", onData);
    input.off("end", onEnd);
    input.off("error", onError);
  };
  return {
    onError: errors.event,
    onClose: closes.event,
    onPartialMessage: partials.event,
    listen(listener) {
      callback = listener;
      input.setEncoding("utf8");
      input.on("data", onData);
      input.on("end", onEnd);
      input.on("error", onError);
      return { dispose: detach };
    },
    dispose() {
      detach();
      errors.clear();
      closes.clear();
      partials.clear();
    },
  };
}

/** Writes each message as one line to `output` (the server's stdin). */
export function newlineMessageWriter(output: Writable): NewlineMessageWriter {
  const errors = new Emitter<[Error, Message | undefined, number | undefined]>();
  const closes = new Emitter<void>();
  let failures = 0;
  const onClose = () => closes.fire();
  output.on("close", onClose);
  return {
    onError: errors.event,
    onClose: closes.event,
    write(message) {
      return new Promise((resolve, reject) => {
        output.write(frame(message), (error) => {
          if (!error) return resolve();
          failures += 1;
          errors.fire([error, message, failures]);
          reject(error);
        });
      });
    },
    end() {
      output.end();
    },
    dispose() {
      output.off("close", onClose);
      errors.clear();
      closes.clear();
    },
  };
}

/** `[reader, writer]` for `createMessageConnection(...newlineTransport(server.stdout, server.stdin))`. */
export function newlineTransport(input: Readable, output: Writable): [NewlineMessageReader, NewlineMessageWriter] {
  return [newlineMessageReader(input), newlineMessageWriter(output)];
}

/** A minimal event source with vscode-jsonrpc's `Event` signature. */
class Emitter<T> {
  private readonly listeners = new Set<(e: T) => unknown>();

  readonly event: Event<T> = (listener, thisArgs, disposables) => {
    const bound = (e: T) => listener.call(thisArgs, e);
    this.listeners.add(bound);
    const disposable = { dispose: () => this.listeners.delete(bound) };
    disposables?.push(disposable);
    return disposable;
  };

  fire(e: T): void {
    for (const listener of [...this.listeners]) listener(e);
  }

  clear(): void {
    this.listeners.clear();
  }
}
