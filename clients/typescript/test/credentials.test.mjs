// Many credentials (contract version 3) through the client, against the real server, two fake
// issuers and local HTTP servers that record which bearer token each path got: fetchWithAuth
// picks the credential by the URL's longest resource prefix, never sends a named credential's
// token to another origin, and reports a rejection for the credential it used.

import assert from "node:assert/strict";
import { test } from "node:test";

import { AuthClient, AuthFailureError, AuthRequiredError, CredentialChoiceError } from "@auth-app-server/client";

import { next, serverArgs, serverBinary, serverEnv, startIssuer, startRoutes, tempHome } from "./helpers.mjs";

/**
 * A server with four credentials: "default" (an API key, no resource), "a" (tokens from issuer
 * one, for `<api>/a`, no refresh token), "b" (a device sign-in at issuer two, for `<api>/a/b`)
 * and "loose" (an API key, no resource). `api` and `other` are two origins.
 */
async function fourCredentials(t, route) {
  const [one, two] = await Promise.all([startIssuer(t), startIssuer(t)]);
  const api = await startRoutes(t, route);
  const other = await startRoutes(t);
  const client = await AuthClient.start({ binary: serverBinary, args: serverArgs(tempHome(t)), env: serverEnv() });
  t.after(() => client.dispose());

  await client.request("login", { type: "apiKey", apiKey: "tok-default" });
  await client.request("login", { type: "apiKey", apiKey: "tok-loose", credential: "loose" });
  const a = next(client, "authStatusChanged", { credential: "a" });
  const login = await client.request("login", {
    type: "tokens",
    credential: "a",
    accessToken: "tok-a",
    provider: { issuer: one.url, resource: `${api.origin}/a` },
  });
  assert.deepEqual(login, { type: "tokens" });
  assert.deepEqual(await a, { authMethod: "oauth", credential: "a", state: "active" });

  const completed = next(client, "loginCompleted", { credential: "b" });
  const started = await client.request("login", {
    type: "deviceCode",
    credential: "b",
    provider: { issuer: two.url, clientId: two.clientId, resource: `${api.origin}/a/b` },
  });
  assert.equal(started.type, "deviceCode");
  assert.deepEqual(await completed, { credential: "b", loginId: started.loginId, success: true });
  const tokenB = await client.getToken({ credential: "b" });
  assert.ok(tokenB && !["tok-default", "tok-a", "tok-loose"].includes(tokenB), tokenB);
  return { client, api, other, one, two, tokenB };
}

test("listCredentials, getToken and notifications per credential", async (t) => {
  const { client, api, one, two, tokenB } = await fourCredentials(t);

  const listed = await client.listCredentials();
  assert.deepEqual(
    listed.map(({ credential, authMethod, state, issuer, resource, storage }) => ({ credential, authMethod, state, issuer, resource, storage })),
    [
      { credential: "a", authMethod: "oauth", state: "active", issuer: one.url, resource: `${api.origin}/a`, storage: "file" },
      { credential: "b", authMethod: "oauth", state: "active", issuer: two.url, resource: `${api.origin}/a/b`, storage: "file" },
      { credential: "default", authMethod: "apiKey", state: "active", issuer: undefined, resource: undefined, storage: "file" },
      { credential: "loose", authMethod: "apiKey", state: "active", issuer: undefined, resource: undefined, storage: "file" },
    ],
  );
  assert.ok(!JSON.stringify(listed).includes(tokenB) && !JSON.stringify(listed).includes("tok-"), "never a token");

  assert.equal(await client.getToken(), "tok-default");
  assert.equal(await client.getToken({ credential: "default" }), "tok-default");
  assert.equal(await client.getToken({ credential: "a" }), "tok-a");
  assert.equal(await client.getToken({ credential: "loose" }), "tok-loose");
  assert.equal(await client.getToken({ credential: "nothing-here" }), undefined);

  // A handler for one credential hears only that credential; one without a filter hears all.
  const heardB = [];
  const heardAll = [];
  client.on("authStatusChanged", (change) => heardB.push(change), { credential: "b" });
  client.on("authStatusChanged", (change) => heardAll.push(change));
  const loggedOut = next(client, "authStatusChanged", { credential: "b" });
  assert.deepEqual(await client.request("logout", { credential: "loose" }), {});
  assert.deepEqual(await client.request("logout", { credential: "b" }), { revoked: true });
  await loggedOut;
  assert.deepEqual(heardB, [{ authMethod: null, credential: "b", state: "signedOut" }]);
  assert.deepEqual(heardAll, [
    { authMethod: null, credential: "loose", state: "signedOut" },
    { authMethod: null, credential: "b", state: "signedOut" },
  ]);
  assert.deepEqual((await client.listCredentials()).map((entry) => entry.credential), ["a", "default"]);
  assert.equal(await client.getToken({ credential: "a" }), "tok-a", "the others are untouched");
  assert.equal(await client.getToken(), "tok-default");

  // Named and signed out: no token, and the error says which credential.
  const required = await client.fetchWithAuth(`${api.origin}/a/b/x`, {}, { credential: "b" }).catch((error) => error);
  assert.ok(required instanceof AuthRequiredError, String(required));
  assert.equal(required.credential, "b");
  assert.equal(required.status.state, "signedOut");
  assert.equal(required.message, 'no usable token of credential "b" (state signedOut)');
  assert.deepEqual(api.hits, []);
});

test("fetchWithAuth sends each path the token of its longest resource prefix, else the default one", async (t) => {
  const { client, api, other, tokenB } = await fourCredentials(t);

  const calls = [
    [`${api.origin}/a`, "tok-a"],
    [`${api.origin}/a/x?q=1`, "tok-a"],
    [`${api.origin}/a/bx`, "tok-a"],
    [`${api.origin}/a/b`, tokenB],
    [`${api.origin}/a/b/c/d`, tokenB],
    [`${api.origin}/ab`, "tok-default"],
    [`${api.origin}/`, "tok-default"],
    [`${api.origin}/other`, "tok-default"],
  ];
  for (const [url, token] of calls) {
    const response = await client.fetchWithAuth(url);
    assert.equal(response.status, 200, url);
    await response.body?.cancel();
    assert.equal(await client.credentialFor(url), { "tok-a": "a", [tokenB]: "b", "tok-default": "default" }[token], url);
  }
  assert.deepEqual(
    api.hits,
    calls.map(([url, token]) => ({ path: new URL(url).pathname, token })),
  );

  // Another origin with the same paths: no resource covers it, so the default token.
  await (await client.fetchWithAuth(`${other.origin}/a/b/c`)).body?.cancel();
  await (await client.fetchWithAuth(new URL(`${other.origin}/a`))).body?.cancel();
  // A credential without a resource goes where the caller names it.
  await (await client.fetchWithAuth(`${other.origin}/loose`, {}, { credential: "loose" })).body?.cancel();
  assert.deepEqual(other.hits, [
    { path: "/a/b/c", token: "tok-default" },
    { path: "/a", token: "tok-default" },
    { path: "/loose", token: "tok-loose" },
  ]);

  // Named: its own origin, under its resource or not, is the caller's choice.
  await (await client.fetchWithAuth(`${api.origin}/a/b/x`, {}, { credential: "a" })).body?.cancel();
  await (await client.fetchWithAuth(`${api.origin}/elsewhere`, {}, { credential: "b" })).body?.cancel();
  await (await client.fetchWithAuth(`${api.origin}/a/x`, {}, { credential: "default" })).body?.cancel();
  assert.deepEqual(api.hits.slice(calls.length), [
    { path: "/a/b/x", token: "tok-a" },
    { path: "/elsewhere", token: tokenB },
    { path: "/a/x", token: "tok-default" },
  ]);
});

test("a named credential's token never goes to another origin", async (t) => {
  const { client, api, other } = await fourCredentials(t, (path, attempt) =>
    path === "/a/redirect" ? { status: 302, headers: { location: `${other.origin}/landed` }, body: "" } : 200,
  );
  const hitsBefore = api.hits.length;

  for (const credential of ["a", "b"]) {
    const refused = await client.fetchWithAuth(`${other.origin}/a/b/x?secret=1`, {}, { credential }).catch((error) => error);
    assert.ok(refused instanceof CredentialChoiceError, String(refused));
    assert.equal(refused.reason, "otherOrigin");
    assert.deepEqual(refused.credentials, [credential]);
    assert.match(refused.message, new RegExp(`^credential "${credential}" is for ${api.origin}/a.*another origin \\(${other.origin}\\)`));
    assert.ok(!refused.message.includes("secret"), refused.message);
    await assert.rejects(client.credentialFor(`${other.origin}/a`, { credential }), CredentialChoiceError);
  }
  assert.deepEqual(other.hits, [], "nothing was sent");
  assert.equal(api.hits.length, hitsBefore);

  // A redirect from the resource to another origin: fetch drops the token on the way.
  const redirected = await client.fetchWithAuth(`${api.origin}/a/redirect`);
  assert.equal(redirected.status, 200);
  await redirected.body?.cancel();
  assert.deepEqual(api.hits, [{ path: "/a/redirect", token: "tok-a" }]);
  assert.deepEqual(other.hits, [{ path: "/landed", token: "" }]);

  // Two credentials for one resource, none named: refused before anything is sent.
  await client.request("login", {
    type: "tokens",
    credential: "a-second",
    accessToken: "tok-a-second",
    provider: { issuer: (await client.listCredentials())[0].issuer, resource: `${api.origin}/a` },
  });
  const ambiguous = await client.fetchWithAuth(`${api.origin}/a/x`).catch((error) => error);
  assert.ok(ambiguous instanceof CredentialChoiceError, String(ambiguous));
  assert.equal(ambiguous.reason, "ambiguous");
  assert.deepEqual(ambiguous.credentials, ["a", "a-second"]);
  assert.equal(api.hits.length, 1);
  await (await client.fetchWithAuth(`${api.origin}/a/x`, {}, { credential: "a-second" })).body?.cancel();
  await (await client.fetchWithAuth(`${api.origin}/a/b/x`)).body?.cancel();
  assert.deepEqual(api.hits.slice(1), [
    { path: "/a/x", token: "tok-a-second" },
    { path: "/a/b/x", token: (await client.getToken({ credential: "b" })) ?? "" },
  ]);
});

test("a rejected token is reported for its credential: that one is refreshed, and the retry carries its new token", async (t) => {
  const { client, api, one, two, tokenB } = await fourCredentials(t, (path, attempt) => {
    if (path === "/a/b/flaky") return attempt === 1 ? 401 : 200;
    if (path === "/a/denied") return 401;
    return 200;
  });
  const before = { one: await one.refreshes(), two: await two.refreshes() };

  const response = await client.fetchWithAuth(`${api.origin}/a/b/flaky`);

  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { ok: true });
  const refreshedB = await client.getToken({ credential: "b" });
  assert.notEqual(refreshedB, tokenB);
  assert.deepEqual(api.hits, [
    { path: "/a/b/flaky", token: tokenB },
    { path: "/a/b/flaky", token: refreshedB },
  ]);
  assert.equal((await two.refreshes()) - before.two, 1, "b's issuer refreshed once");
  assert.equal((await one.refreshes()) - before.one, 0, "a's issuer not at all");
  assert.equal(await client.getToken({ credential: "a" }), "tok-a");
  assert.equal(await client.getToken(), "tok-default");

  // "a" has no refresh token: the server's advice is for "a", not for the default API key.
  const failure = await client.fetchWithAuth(`${api.origin}/a/denied`).catch((error) => error);
  assert.ok(failure instanceof AuthFailureError, String(failure));
  assert.equal(failure.credential, "a");
  assert.equal(failure.action, "needsLogin");
  assert.match(failure.message, /^the API answered 401 to the token of credential "a"; auth-app-server says needsLogin/);
  assert.equal(JSON.parse(JSON.stringify(failure)).credential, "a");
  assert.deepEqual(api.hits.slice(2), [{ path: "/a/denied", token: "tok-a" }]);
  assert.equal((await one.refreshes()) - before.one, 0);
});

test("the resource that comes with the token is checked too: a credential signed in again for another origin meanwhile sends nothing", async (t) => {
  const one = await startIssuer(t);
  const api = await startRoutes(t);
  const other = await startRoutes(t);
  const client = await AuthClient.start({ binary: serverBinary, args: serverArgs(tempHome(t)), env: serverEnv() });
  t.after(() => client.dispose());
  await client.request("login", {
    type: "tokens",
    credential: "a",
    accessToken: "tok-a",
    provider: { issuer: one.url, resource: `${api.origin}/a` },
  });
  const before = await client.listCredentials();
  assert.equal(before[0].resource, `${api.origin}/a`);
  // Signed in again for the other origin (as another process might, between this client's
  // listCredentials and its getAuthStatus): the list this client holds is out of date.
  await client.request("login", {
    type: "tokens",
    credential: "a",
    accessToken: "tok-a-elsewhere",
    provider: { issuer: one.url, resource: `${other.origin}/a` },
  });
  client.listCredentials = async () => before;

  for (const options of [{ credential: "a" }, {}]) {
    const refused = await client.fetchWithAuth(`${api.origin}/a/x`, {}, options).catch((error) => error);
    assert.ok(refused instanceof CredentialChoiceError, String(refused));
    assert.equal(refused.reason, "otherOrigin");
    assert.deepEqual(refused.credentials, ["a"]);
  }
  assert.deepEqual(api.hits, [], "the token for the other origin was not sent");
});
