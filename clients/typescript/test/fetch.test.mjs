// fetchWithAuth against a local HTTP API, with OAuth tokens from the fake issuer (a device
// login it approves at once): one refresh and one retry when the API rejects a token once; one
// refresh and no loop when it rejects every token.

import assert from "node:assert/strict";
import { test } from "node:test";
import { inspect } from "node:util";

import { AuthClient, AuthFailureError, AuthRequiredError } from "@auth-app-server/client";

import { next, serverArgs, serverBinary, serverEnv, startApi, startIssuer, tempHome } from "./helpers.mjs";

/** A client signed in through the issuer's device flow. */
async function signedIn(t, issuer) {
  const client = await AuthClient.start({
    binary: serverBinary,
    args: serverArgs(tempHome(t), issuer),
    env: serverEnv(),
  });
  t.after(() => client.dispose());
  const completed = next(client, "loginCompleted");
  const active = next(client, "authStatusChanged");
  const started = await client.request("login", { type: "deviceCode" });
  assert.equal(started.type, "deviceCode");
  assert.ok(started.type === "deviceCode" && started.userCode.length > 0);
  assert.deepEqual(await completed, { credential: "default", loginId: started.loginId, success: true });
  assert.deepEqual(await active, { authMethod: "oauth", credential: "default", state: "active" });
  return client;
}

test("401 once: one refresh, one retry, the new token", async (t) => {
  const issuer = await startIssuer(t);
  const client = await signedIn(t, issuer);
  const api = await startApi(t, (attempt) => (attempt === 1 ? 401 : 200));
  const refreshesBefore = await issuer.refreshes();

  const response = await client.fetchWithAuth(api.url, { headers: { accept: "application/json" } });

  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { ok: true });
  assert.equal(api.tokens.length, 2, "the call and one retry");
  assert.notEqual(api.tokens[0], api.tokens[1], "the retry carries the refreshed token");
  assert.equal((await issuer.refreshes()) - refreshesBefore, 1, "one refresh");
  assert.equal(await client.getToken(), api.tokens[1]);
});

test("401 always: one refresh, then refreshDidNotHelp, and no loop", async (t) => {
  const issuer = await startIssuer(t);
  const client = await signedIn(t, issuer);
  const api = await startApi(t, () => 401);
  const refreshesBefore = await issuer.refreshes();

  const failure = await client.fetchWithAuth(api.url).catch((error) => error);

  assert.ok(failure instanceof AuthFailureError, String(failure));
  assert.ok(["refreshDidNotHelp", "needsLogin"].includes(failure.action), failure.action);
  assert.equal(failure.response.status, 401);
  assert.equal(api.tokens.length, 2, "the call and one retry, never more");
  assert.equal((await issuer.refreshes()) - refreshesBefore, 1, "one refresh");

  // Calling again does not start a storm: no refresh, one request.
  const again = await client.fetchWithAuth(api.url).catch((error) => error);
  assert.ok(again instanceof AuthFailureError, String(again));
  assert.equal(api.tokens.length, 3);
  assert.equal((await issuer.refreshes()) - refreshesBefore, 1, "still one refresh");
});

test("a 403 that is not about the token is returned as it is", async (t) => {
  const issuer = await startIssuer(t);
  const client = await signedIn(t, issuer);
  const page = "<html><body>Access denied by the firewall</body></html>";
  const api = await startApi(t, () => ({ status: 403, type: "text/html", body: page }));
  const refreshesBefore = await issuer.refreshes();

  const response = await client.fetchWithAuth(api.url);

  assert.equal(response.status, 403);
  assert.equal(await response.text(), page, "the body is still readable");
  assert.equal(api.tokens.length, 1, "no retry");
  assert.equal((await issuer.refreshes()) - refreshesBefore, 0, "no refresh");
});

test("without a token, fetchWithAuth rejects before calling the API", async (t) => {
  const client = await AuthClient.start({ binary: serverBinary, args: serverArgs(tempHome(t)), env: serverEnv() });
  t.after(() => client.dispose());
  const api = await startApi(t, () => 200);
  const failure = await client.fetchWithAuth(api.url).catch((error) => error);
  assert.ok(failure instanceof AuthRequiredError, String(failure));
  assert.equal(failure.status.state, "signedOut");
  assert.equal(api.tokens.length, 0);
});

test("an AuthFailureError keeps the token out of inspect and JSON, and readable", async (t) => {
  const key = "sk-live-secret-0123456789abcdef";
  const client = await AuthClient.start({ binary: serverBinary, args: serverArgs(tempHome(t)), env: serverEnv() });
  t.after(() => client.dispose());
  await client.request("login", { type: "apiKey", apiKey: key });
  const api = await startApi(t, () => 401);

  const failure = await client.fetchWithAuth(api.url).catch((error) => error);

  assert.ok(failure instanceof AuthFailureError, String(failure));
  assert.equal(failure.action, "apiKeyRejected");
  assert.equal(failure.advice.authToken, key, "the token is still readable");
  const shown = {
    inspect: inspect(failure),
    inspectHidden: inspect(failure, { showHidden: true, depth: Infinity }),
    inspectAdvice: inspect(failure.advice, { depth: Infinity }),
    json: JSON.stringify(failure),
    jsonAdvice: JSON.stringify(failure.advice),
    spread: JSON.stringify({ ...failure.advice }),
    string: String(failure),
    stack: failure.stack,
    nested: inspect({ cause: failure }, { depth: Infinity }),
  };
  for (const [how, text] of Object.entries(shown)) assert.ok(!text.includes(key), `${how} shows the token: ${text}`);
  assert.match(shown.inspect, /apiKeyRejected/);
  assert.match(shown.inspect, /authToken: '\[redacted\]'/);
  assert.equal(JSON.parse(shown.json).advice.authToken, "[redacted]");
  assert.equal(JSON.parse(shown.json).status, 401);
});
