// Newline-delimited framing: the server reads and writes one JSON message per line.

/** Splits text that arrives in chunks into lines (without their `\n`); blank lines are skipped. */
export class LineSplitter {
  private partial = "";

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: string): void {
    let start = 0;
    let end: number;
    while ((end = chunk.indexOf("\n", start)) >= 0) {
      const line = this.partial + chunk.slice(start, end);
      this.partial = "";
      start = end + 1;
      if (line.trim() !== "") this.onLine(line);
    }
    this.partial += chunk.slice(start);
  }

  /** The input ended: a last line without `\n` still counts. */
  end(): void {
    const line = this.partial;
    this.partial = "";
    if (line.trim() !== "") this.onLine(line);
  }
}

/** One message as a line. */
export function frame(message: unknown): string {
  return `${JSON.stringify(message)}\n`;
}
