// A host of auth-app-server with @auth-app-server/client: start the server, sign in with an
// API key, call an API with the token, see what happens when the API rejects it, sign out.
//
// Run: npm ci && node client.mjs   (the package must be built: cd ../../clients/typescript &&
//      npm ci && npm run build; the server: cargo build -p auth-app-server, or set
//      AUTH_APP_SERVER_BIN)

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { AuthClient, AuthFailureError } from "@auth-app-server/client";

const binary = process.env.AUTH_APP_SERVER_BIN ?? fileURLToPath(new URL("../../target/debug/auth-app-server", import.meta.url));
const home = mkdtempSync(join(tmpdir(), "auth-app-server-example-"));
const auth = await AuthClient.start({ binary, args: ["--home", home], clientInfo: { name: "node-client-example", version: "0.1.0" } });
auth.on("authStatusChanged", ({ authMethod, state }) => console.log(`authStatusChanged: ${authMethod ?? "none"} / ${state}`));

// An API that accepts one key.
let accepted = "sk-example-0123456789abcdef";
const api = createServer((request, response) => {
  const ok = request.headers.authorization === `Bearer ${accepted}`;
  response.writeHead(ok ? 200 : 401, { "content-type": "application/json" }).end(JSON.stringify(ok ? { hello: "world" } : { error: "invalid_api_key" }));
});
await new Promise((resolve) => api.listen(0, "127.0.0.1", () => resolve(undefined)));
const address = api.address();
const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/hello`;

try {
  console.log(`connected to ${auth.serverInfo?.name} ${auth.serverInfo?.version}`);
  assert.equal((await auth.request("getAuthStatus")).state, "signedOut");

  await auth.request("login", { type: "apiKey", apiKey: accepted });
  const response = await auth.fetchWithAuth(url);
  console.log(`GET ${url} -> ${response.status} ${JSON.stringify(await response.json())}`);
  assert.equal(response.status, 200);

  // The key is revoked at the API: a key cannot be refreshed, so no retry; the advice says why.
  accepted = "sk-another";
  const failure = await auth.fetchWithAuth(url).catch((error) => error);
  assert.ok(failure instanceof AuthFailureError);
  console.log(`GET ${url} -> ${failure.response.status}; advice: ${failure.action}`);
  assert.equal(failure.action, "apiKeyRejected");

  await auth.request("logout");
  assert.equal(await auth.getToken(), undefined);
} finally {
  await auth.dispose();
  api.close();
  rmSync(home, { recursive: true, force: true });
}
