// The client's two rules, as pure functions: how long to wait before restarting a server that
// died, and what to do with an API call after `reportAuthFailure` answered.

import type { AuthFailureAction } from "./protocol/index.js";

export interface RestartOptions {
  /** The wait before the first restart; it doubles with each restart in a row. Default 250 ms. */
  initialDelayMs?: number;
  /** The longest wait between restarts. Default 30 s. */
  maxDelayMs?: number;
  /** A server that ran this long before it died starts the count again. Default 30 s. */
  stableAfterMs?: number;
}

export const RESTART_DEFAULTS: Required<RestartOptions> = {
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  stableAfterMs: 30_000,
};

/** The wait before restart number `attempt` (0 for the first in a row). */
export function restartDelay(attempt: number, options: Required<RestartOptions>): number {
  const delay = options.initialDelayMs * 2 ** Math.min(attempt, 30);
  return Math.min(delay, options.maxDelayMs);
}

/**
 * What an API call does after the API rejected its token and `reportAuthFailure` answered
 * `action`: `retry` once with the answer's `authToken`, `return` the API's response as it is
 * (it was not an authentication failure), or `fail` (retrying now cannot help).
 */
export function afterRejection(action: AuthFailureAction, retried: boolean): "retry" | "return" | "fail" {
  switch (action) {
    case "notAuthFailure":
      return "return";
    case "refreshed":
    case "alreadyRotated":
      return retried ? "fail" : "retry";
    case "needsLogin":
    case "retryLater":
    case "insufficientScope":
    case "apiKeyRejected":
    case "refreshDidNotHelp":
      return "fail";
  }
}

/** The statuses that may mean the token was rejected. */
export function isAuthRejection(status: number): boolean {
  return status === 401 || status === 403;
}
