// Which credential's token an API call carries, as pure functions (contract version 3, "choosing
// by URL"): with no credential named, the one whose `resource` is the longest prefix of the URL,
// else "default"; with one named, that one, but never to an origin other than its resource's.

import { CredentialChoiceError } from "./errors.js";
import type { CredentialName, CredentialSummary } from "./protocol/index.js";

/** The credential of contract versions 1 and 2 (`auth.json`): the one used when none is named. */
export const DEFAULT_CREDENTIAL: CredentialName = "default";

/** What the choice needs of a stored credential (`listCredentials` gives it). */
export type CredentialResource = Pick<CredentialSummary, "credential" | "resource">;

/**
 * How much of `url` the resource covers: the length of the resource's path (without a trailing
 * `/`) when it has the URL's origin (scheme, host and port) and its path is the URL's path or a
 * prefix of it that ends at a `/` (`https://a.example/mcp` covers `https://a.example/mcp` and
 * `https://a.example/mcp/x`, not `https://a.example/mcpx`); `undefined` when it does not cover
 * it. Query and fragment are not compared. A resource that is not an http(s) URL covers nothing.
 */
export function resourceCoverage(resource: string, url: string | URL): number | undefined {
  const base = httpUrl(resource);
  const target = httpUrl(url);
  if (base === undefined || target === undefined || base.origin !== target.origin) return undefined;
  const path = base.pathname.replace(/\/+$/, "");
  const covered = target.pathname === path || target.pathname.startsWith(`${path}/`);
  return covered ? path.length : undefined;
}

/** `resource` covers `url` (`resourceCoverage`). */
export function resourceCovers(resource: string, url: string | URL): boolean {
  return resourceCoverage(resource, url) !== undefined;
}

/**
 * The credential whose token goes to `url` (an absolute URL; anything else throws `TypeError`).
 *
 * - Nothing `named`: the credential whose `resource` covers the URL with the longest path; none
 *   → `"default"`. Two or more covering it equally (two accounts on one service) →
 *   `CredentialChoiceError` (`ambiguous`): the caller must name one.
 * - `"default"` named, or a credential with no recorded `resource`: that one, wherever the
 *   caller sends it (as `fetchWithAuth` did before credentials had names).
 * - Another credential named: that one, only when the URL has its resource's origin; else
 *   `CredentialChoiceError` (`otherOrigin`, or `resourceNotHttp` when the resource has no
 *   origin to compare).
 */
export function chooseCredential(url: string | URL, credentials: readonly CredentialResource[], named?: CredentialName): CredentialName {
  const target = new URL(url);
  if (named === DEFAULT_CREDENTIAL) return named;
  if (named !== undefined) {
    const resource = credentials.find((entry) => entry.credential === named)?.resource;
    if (resource === undefined) return named;
    const origin = httpUrl(resource)?.origin;
    if (origin === undefined) throw CredentialChoiceError.resourceNotHttp(named, resource);
    if (origin !== target.origin) throw CredentialChoiceError.otherOrigin(named, resource, target.origin);
    return named;
  }
  let longest = -1;
  let best: CredentialResource[] = [];
  for (const entry of credentials) {
    const length = entry.resource === undefined ? undefined : resourceCoverage(entry.resource, target);
    if (length === undefined || length < longest) continue;
    if (length > longest) best = [];
    longest = length;
    best.push(entry);
  }
  const [only, ...others] = best;
  if (only === undefined) return DEFAULT_CREDENTIAL;
  if (others.length > 0) throw CredentialChoiceError.ambiguous(best.map((entry) => entry.credential), only.resource ?? "");
  return only.credential;
}

/** `value` parsed, when it is an absolute http or https URL. */
function httpUrl(value: string | URL): URL | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  return url.protocol === "https:" || url.protocol === "http:" ? url : undefined;
}
