// The vscode-jsonrpc helper: a MessageConnection over the real server's newline framing.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { test } from "node:test";

import { newlineTransport } from "@auth-app-server/client/vscode-jsonrpc";
import rpc from "vscode-jsonrpc/node.js";

import { serverArgs, serverBinary, serverEnv, tempHome } from "./helpers.mjs";

test("a vscode-jsonrpc MessageConnection talks to the server", async (t) => {
  const server = spawn(serverBinary, serverArgs(tempHome(t)), { stdio: ["pipe", "pipe", "ignore"], env: serverEnv() });
  t.after(() => server.kill("SIGKILL"));
  const connection = rpc.createMessageConnection(...newlineTransport(server.stdout, server.stdin));
  const changes = [];
  connection.onNotification("authStatusChanged", (params) => changes.push(params));
  connection.listen();

  const hello = await connection.sendRequest("initialize", { clientInfo: { name: "vscode-test", version: "1" } });
  assert.equal(hello.serverInfo.name, "auth-app-server");
  await connection.sendNotification("initialized");

  await connection.sendRequest("login", { type: "apiKey", apiKey: "sk-vscode-0123456789" });
  const status = await connection.sendRequest("getAuthStatus", { includeToken: true });
  assert.equal(status.authToken, "sk-vscode-0123456789");
  assert.deepEqual(changes, [{ authMethod: "apiKey", credential: "default", state: "active" }]);

  const error = await connection.sendRequest("login", { type: "deviceCode" }).catch((e) => e);
  assert.ok(error instanceof rpc.ResponseError, String(error));
  assert.equal(error.code, -32010);

  // Concurrent requests are matched to their answers.
  const answers = await Promise.all(Array.from({ length: 50 }, () => connection.sendRequest("getAuthStatus")));
  assert.ok(answers.every((answer) => answer.state === "active"));

  connection.dispose();
  server.stdin.end();
  const [code] = await once(server, "exit");
  assert.equal(code, 0);
});
