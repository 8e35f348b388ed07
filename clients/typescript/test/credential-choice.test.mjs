// Choosing a credential by URL, as pure functions: the longest resource prefix at a `/`
// boundary, same origin only, "default" when nothing covers the URL, and where a named
// credential's token may go.

import assert from "node:assert/strict";
import { test } from "node:test";

import { chooseCredential, CredentialChoiceError, DEFAULT_CREDENTIAL, resourceCoverage, resourceCovers } from "@auth-app-server/client";

test("a resource covers its own URL and what lies under it at a / boundary, on its origin only", () => {
  const cases = [
    // resource, url, covers
    ["https://a.example/mcp", "https://a.example/mcp", true],
    ["https://a.example/mcp", "https://a.example/mcp/", true],
    ["https://a.example/mcp", "https://a.example/mcp/x/y", true],
    ["https://a.example/mcp", "https://a.example/mcp?x=1", true],
    ["https://a.example/mcp", "https://a.example/mcp#frag", true],
    ["https://a.example/mcp", "https://a.example/mcpx", false],
    ["https://a.example/mcp", "https://a.example/mc", false],
    ["https://a.example/mcp", "https://a.example/", false],
    ["https://a.example/mcp", "https://a.example/other/mcp", false],
    ["https://a.example/mcp/", "https://a.example/mcp", true],
    ["https://a.example/mcp/", "https://a.example/mcp/x", true],
    ["https://a.example/mcp/", "https://a.example/mcpx", false],
    ["https://a.example", "https://a.example/anything/at/all", true],
    ["https://a.example/", "https://a.example/", true],
    ["https://a.example/mcp?tenant=1", "https://a.example/mcp/x", true],
    // Same path, another origin: another scheme, host, port, or a subdomain.
    ["https://a.example/mcp", "http://a.example/mcp", false],
    ["https://a.example/mcp", "https://b.example/mcp", false],
    ["https://a.example/mcp", "https://a.example:8443/mcp", false],
    ["https://a.example/mcp", "https://sub.a.example/mcp", false],
    ["https://a.example/mcp", "https://a.example.evil.test/mcp", false],
    ["https://a.example/mcp", "https://evil.test/https://a.example/mcp", false],
    // Ports and host case as URLs mean them.
    ["https://a.example:443/mcp", "https://a.example/mcp/x", true],
    ["https://A.Example/mcp", "https://a.example/mcp", true],
    ["http://127.0.0.1:8080/api", "http://127.0.0.1:8080/api/v1", true],
    ["http://127.0.0.1:8080/api", "http://localhost:8080/api/v1", false],
    // Paths are case-sensitive.
    ["https://a.example/mcp", "https://a.example/MCP", false],
    // Dot segments are resolved before comparing: no way out of the prefix.
    ["https://a.example/mcp", "https://a.example/mcp/../admin", false],
    ["https://a.example/mcp", "https://a.example/admin/../mcp/x", true],
    // A resource that is not an http(s) URL covers nothing.
    ["urn:example:api", "https://a.example/mcp", false],
    ["api://my-app", "api://my-app/x", false],
    ["not a url", "https://a.example/", false],
  ];
  for (const [resource, url, covers] of cases) {
    assert.equal(resourceCovers(resource, url), covers, `${resource} covers ${url}`);
    assert.equal(resourceCovers(resource, new URL(url, "https://unused.example/")), covers, `${resource} covers new URL(${url})`);
  }
  assert.equal(resourceCoverage("https://a.example/mcp/", "https://a.example/mcp/x"), "/mcp".length);
  assert.equal(resourceCoverage("https://a.example", "https://a.example/x"), 0);
  assert.equal(resourceCoverage("https://a.example/mcp", "https://a.example/mcpx"), undefined);
});

const stored = [
  { credential: "default", resource: "https://api.example/" },
  { credential: "mcp-a", resource: "https://a.example/mcp" },
  { credential: "mcp-a-tools", resource: "https://a.example/mcp/tools" },
  { credential: "mcp-b", resource: "https://b.example:8443/mcp" },
  { credential: "no-resource" },
  { credential: "audience", resource: "urn:example:api" },
];

test("no credential named: the longest resource prefix, else default", () => {
  const cases = [
    ["https://a.example/mcp", "mcp-a"],
    ["https://a.example/mcp/x", "mcp-a"],
    ["https://a.example/mcp/tools", "mcp-a-tools"],
    ["https://a.example/mcp/tools/list?cursor=2", "mcp-a-tools"],
    ["https://a.example/mcp/toolsx", "mcp-a"],
    ["https://a.example/mcpx", DEFAULT_CREDENTIAL],
    ["https://a.example/", DEFAULT_CREDENTIAL],
    ["http://a.example/mcp/x", DEFAULT_CREDENTIAL],
    ["https://b.example:8443/mcp/x", "mcp-b"],
    ["https://b.example/mcp/x", DEFAULT_CREDENTIAL],
    ["https://api.example/v1/me", DEFAULT_CREDENTIAL],
    ["https://elsewhere.example/", DEFAULT_CREDENTIAL],
  ];
  for (const [url, expected] of cases) {
    assert.equal(chooseCredential(url, stored), expected, url);
    assert.equal(chooseCredential(new URL(url), stored), expected, `new URL(${url})`);
  }
  assert.equal(chooseCredential("https://a.example/mcp/x", []), DEFAULT_CREDENTIAL, "nothing stored");
  // The default credential's resource counts like any other.
  const defaultLonger = [
    { credential: "default", resource: "https://a.example/mcp/tools" },
    { credential: "mcp-a", resource: "https://a.example/mcp" },
  ];
  assert.equal(chooseCredential("https://a.example/mcp/tools/x", defaultLonger), "default");
  assert.equal(chooseCredential("https://a.example/mcp/x", defaultLonger), "mcp-a");
});

test("no credential named, two for the same resource: refused, naming both", () => {
  const twoAccounts = [
    { credential: "work", resource: "https://a.example/mcp" },
    { credential: "home", resource: "https://a.example/mcp/" },
    { credential: "short", resource: "https://a.example" },
  ];
  const error = catchError(() => chooseCredential("https://a.example/mcp/x?token=secret-in-query", twoAccounts));
  assert.ok(error instanceof CredentialChoiceError, String(error));
  assert.equal(error.reason, "ambiguous");
  assert.deepEqual(error.credentials, ["work", "home"]);
  assert.match(error.message, /credentials "work", "home" are all for https:\/\/a\.example\/mcp, .*fetchWithAuth\(url, init, \{ credential \}\)/);
  assert.ok(!error.message.includes("secret-in-query"), error.message);
  // A longer resource still wins; one elsewhere does not matter.
  assert.equal(chooseCredential("https://a.example/other", twoAccounts), "short");
  // Named, either is used.
  assert.equal(chooseCredential("https://a.example/mcp/x", twoAccounts, "home"), "home");
});

test("a named credential: used on its resource's origin, refused elsewhere", () => {
  // On its origin, under its resource or not: the caller named it.
  assert.equal(chooseCredential("https://a.example/mcp/x", stored, "mcp-a"), "mcp-a");
  assert.equal(chooseCredential("https://a.example/mcp/tools", stored, "mcp-a"), "mcp-a");
  assert.equal(chooseCredential("https://a.example/.well-known/thing", stored, "mcp-a"), "mcp-a");

  for (const [url, named, origin] of [
    ["https://b.example:8443/mcp", "mcp-a", "https://b.example:8443"],
    ["http://a.example/mcp", "mcp-a", "http://a.example"],
    ["https://a.example.evil.test/mcp", "mcp-a", "https://a.example.evil.test"],
    ["https://b.example/mcp", "mcp-b", "https://b.example"],
  ]) {
    const error = catchError(() => chooseCredential(`${url}/private/path?key=secret`, stored, named));
    assert.ok(error instanceof CredentialChoiceError, `${named} to ${url}: ${error}`);
    assert.equal(error.reason, "otherOrigin");
    assert.deepEqual(error.credentials, [named]);
    assert.ok(error.message.startsWith(`credential "${named}" is for `), error.message);
    assert.ok(error.message.includes(`another origin (${origin})`), error.message);
    assert.ok(!/private|secret/.test(error.message), error.message);
  }

  // Without a recorded resource, or "default": wherever the caller sends it.
  assert.equal(chooseCredential("https://anywhere.example/x", stored, "no-resource"), "no-resource");
  assert.equal(chooseCredential("https://anywhere.example/x", stored, "not-stored"), "not-stored");
  assert.equal(chooseCredential("https://anywhere.example/x", stored, "default"), "default");
  assert.equal(chooseCredential("https://a.example/mcp/x", stored, "default"), "default", "named default is not overridden by the URL");

  // A resource with no origin: nowhere.
  const opaque = catchError(() => chooseCredential("https://a.example/x", stored, "audience"));
  assert.ok(opaque instanceof CredentialChoiceError, String(opaque));
  assert.equal(opaque.reason, "resourceNotHttp");
  assert.match(opaque.message, /credential "audience" is for "urn:example:api", not an http\(s\) URL.*getToken\(\{ credential: "audience" \}\)/);
});

test("a URL that is not absolute is a TypeError, whatever is named", () => {
  assert.throws(() => chooseCredential("/relative", stored), TypeError);
  assert.throws(() => chooseCredential("/relative", stored, "default"), TypeError);
  assert.throws(() => chooseCredential("/relative", stored, "mcp-a"), TypeError);
});

function catchError(run) {
  try {
    run();
  } catch (error) {
    return error;
  }
  assert.fail("did not throw");
}
