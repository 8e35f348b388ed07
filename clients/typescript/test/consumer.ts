// A host's code, type-checked by `npm run typecheck` (tsc --strict) against the built package,
// never run. Each `@ts-expect-error` line must fail to compile: if the package's types stopped
// catching a wrong method name, wrong params or a wrong result, tsc would report the unused
// directive and the check would fail.

import {
  AuthClient,
  AuthFailureError,
  chooseCredential,
  CredentialChoiceError,
  ErrorCode,
  RpcError,
  type AuthStatus,
  type CredentialName,
  type CredentialSummary,
  type JsonRpcResponse,
  type LoginResult,
  type Methods,
  type Notifications,
} from "@auth-app-server/client";

export async function host(client: AuthClient): Promise<void> {
  const status: AuthStatus = await client.request("getAuthStatus", { includeToken: true, refreshToken: true });
  await client.request("getAuthStatus");
  await client.request("logout");
  await client.request("cancelLogin", { loginId: "l" });
  const login: LoginResult = await client.request("login", { type: "apiKey", apiKey: "sk-1" });
  if (login.type === "deviceCode") console.log(login.userCode, login.verificationUri);
  const advice = await client.request("reportAuthFailure", { status: 401, rejectedToken: status.authToken });
  console.log(advice.action, advice.authToken);

  await client.request("getAuthStatus", undefined, { timeoutMs: 1_000 });
  await client.request("login", { type: "apiKey", apiKey: "sk-1" }, { timeoutMs: Infinity });
  // @ts-expect-error: not a request option
  await client.request("getAuthStatus", {}, { timeout: 5 });
  // @ts-expect-error: no such method
  await client.request("getAuthStatuz", {});
  // @ts-expect-error: initialize is the client's own
  await client.request("initialize", { clientInfo: { name: "n", version: "1" } });
  // @ts-expect-error: a misspelled member
  await client.request("getAuthStatus", { includeTokens: true });
  // @ts-expect-error: a member of the wrong type
  await client.request("getAuthStatus", { includeToken: "yes" });
  // @ts-expect-error: login's params are required
  await client.request("login");
  // @ts-expect-error: an apiKey login needs apiKey
  await client.request("login", { type: "apiKey" });
  // @ts-expect-error: not a login type
  await client.request("login", { type: "password", password: "p" });
  // @ts-expect-error: cancelLogin needs loginId
  await client.request("cancelLogin", {});
  // @ts-expect-error: status is a number
  await client.request("reportAuthFailure", { status: "401" });
  // @ts-expect-error: getAuthStatus answers AuthStatus, not LoginResult
  const wrong: LoginResult = await client.request("getAuthStatus");
  console.log(wrong);

  client.on("authStatusChanged", (change) => console.log(change.state, change.authMethod));
  client.on("loginCompleted", (done) => console.log(done.loginId, done.success, done.error));
  // @ts-expect-error: no such notification
  client.on("statusChanged", () => {});
  // @ts-expect-error: loginCompleted carries no state
  client.on("loginCompleted", (done) => console.log(done.state));

  const token: string | undefined = await client.getToken();
  console.log(token);
  try {
    const response: Response = await client.fetchWithAuth("https://api.example.com/v1/me", { method: "GET" });
    console.log(response.status);
  } catch (error) {
    if (error instanceof AuthFailureError) console.log(error.action, error.hint, error.response.status);
    if (error instanceof RpcError && error.code === ErrorCode.NotInitialized) console.log("not initialized");
  }

  // Contract version 3: a credential on every call, listCredentials, choosing by URL.
  await client.request("getAuthStatus", { credential: "mcp-a", includeToken: true });
  await client.request("login", { type: "tokens", credential: "mcp-a", accessToken: "t", provider: { issuer: "https://as.example", resource: "https://a.example/mcp" } });
  await client.request("login", { type: "deviceCode", credential: "mcp-a", provider: { protectedResource: "https://a.example/mcp", scopes: ["read"] } });
  await client.request("logout", { credential: "mcp-a" });
  await client.request("reportAuthFailure", { status: 401, credential: "mcp-a" });
  const listed: CredentialSummary[] = await client.listCredentials();
  const { credentials } = await client.request("listCredentials");
  console.log(listed[0]?.resource, credentials.length);
  const named: string | undefined = await client.getToken({ credential: "mcp-a" });
  const chosen: CredentialName = await client.credentialFor("https://a.example/mcp/x");
  await client.fetchWithAuth("https://a.example/mcp/x", {}, { credential: chosen });
  console.log(named, chooseCredential("https://a.example/mcp", listed));
  client.on("authStatusChanged", (change) => console.log(change.credential, change.state), { credential: "mcp-a" });
  client.on("loginCompleted", (done) => console.log(done.credential, done.success), { credential: "default" });
  try {
    await client.fetchWithAuth("https://b.example/", {}, { credential: "mcp-a" });
  } catch (error) {
    if (error instanceof CredentialChoiceError) console.log(error.reason, error.credentials);
  }
  // @ts-expect-error: a credential is a name, not a number
  await client.request("getAuthStatus", { credential: 1 });
  // @ts-expect-error: a provider member misspelled
  await client.request("login", { type: "deviceCode", credential: "x", provider: { issuerUrl: "https://as.example" } });
  // @ts-expect-error: an apiKey login takes no provider
  await client.request("login", { type: "apiKey", apiKey: "k", credential: "x", provider: { issuer: "https://as.example" } });
  // @ts-expect-error: getToken takes options, not a bare name
  await client.getToken("mcp-a");
  // @ts-expect-error: not a notification option
  client.on("authStatusChanged", () => {}, { name: "mcp-a" });
  // @ts-expect-error: listCredentials answers summaries, never a token
  console.log(listed[0]?.authToken);

  const map: Methods["getAuthStatus"]["result"] = status;
  const note: Notifications["authStatusChanged"] = { authMethod: null, state: "signedOut", credential: "default" };
  const line: JsonRpcResponse<"logout"> = { jsonrpc: "2.0", id: 1, result: { revoked: true } };
  // @ts-expect-error: not an error code of the protocol
  const code: ErrorCode = -1;
  console.log(map, note, line, code);
}

export async function started(): Promise<AuthClient> {
  return AuthClient.start({ binary: "/opt/app/bin/auth-app-server", args: ["--home", "/tmp/h"], restart: { initialDelayMs: 100 }, startTimeoutMs: 5_000, requestTimeoutMs: 30_000 });
}
