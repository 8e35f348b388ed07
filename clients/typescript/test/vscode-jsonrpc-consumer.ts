// The README's vscode-jsonrpc snippet, type-checked against vscode-jsonrpc's own types (tsc
// --strict), never run: the reader and writer must be what `createMessageConnection` takes.

import { spawn } from "node:child_process";

import { newlineTransport } from "@auth-app-server/client/vscode-jsonrpc";
import type { InitializeResult } from "@auth-app-server/client";
import { createMessageConnection, type MessageConnection } from "vscode-jsonrpc/node.js";

export async function connect(binary: string): Promise<MessageConnection> {
  const server = spawn(binary, [], { stdio: ["pipe", "pipe", "inherit"] });
  const connection = createMessageConnection(...newlineTransport(server.stdout, server.stdin));
  connection.listen();
  const hello: InitializeResult = await connection.sendRequest("initialize", {
    clientInfo: { name: "my-extension", version: "1.0.0" },
  });
  console.log(hello.serverInfo.name);
  return connection;
}
