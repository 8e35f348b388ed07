// The few Node.js APIs the example uses, so type-checking needs no @types/node download.
declare module "node:child_process" {
  interface Readable {
    on(event: "data", listener: (chunk: Buffer | string) => void): void;
    setEncoding(encoding: string): void;
  }
  interface Writable {
    write(chunk: string): boolean;
    end(): void;
  }
  interface ChildProcess {
    stdin: Writable;
    stdout: Readable;
    stderr: Readable;
    on(event: "exit", listener: (code: number | null, signal: string | null) => void): void;
  }
  export function spawn(command: string, args: string[], options?: { stdio?: string[] }): ChildProcess;
}
declare module "node:fs" {
  export function mkdtempSync(prefix: string): string;
  export function rmSync(path: string, options?: { recursive?: boolean; force?: boolean }): void;
  export function existsSync(path: string): boolean;
}
declare module "node:os" {
  export function tmpdir(): string;
}
declare module "node:path" {
  export function join(...parts: string[]): string;
  export function dirname(path: string): string;
}
declare module "node:url" {
  export function fileURLToPath(url: string | URL): string;
}
declare const process: {
  env: Record<string, string | undefined>;
  exit(code?: number): never;
  exitCode: number | undefined;
};
interface Buffer {
  toString(encoding?: string): string;
}
