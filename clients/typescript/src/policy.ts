// The client's two rules, as pure functions: how long to wait before restarting a server that
// died, and what to do with an API call after `reportAuthFailure` answered.

import type { AuthFailureAction } from "./protocol/index.js";

/** Left out or `undefined`, a member takes its default; a bad value makes `AuthClient.start` throw. */
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

/** The longest wait `setTimeout` takes (a longer one fires at once). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * `value` as a number of milliseconds: `fallback` when it is `undefined` (an option passed as
 * `{ initialDelayMs: undefined }` gets its default, as if it were left out), else a number in
 * [`min`, `MAX_TIMER_MS`] (or `Infinity` when `infinite` is allowed); anything else throws a
 * `TypeError` or `RangeError` naming the option.
 */
export function milliseconds(name: string, value: unknown, fallback: number, min: number, infinite = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(`${name} must be a number of milliseconds, not ${describeValue(value)}`);
  }
  if (value === Infinity && infinite) return value;
  if (value < min || value > MAX_TIMER_MS) {
    const range = `${min}..${MAX_TIMER_MS}${infinite ? " or Infinity" : ""}`;
    throw new RangeError(`${name} must be in ${range} ms, not ${value}`);
  }
  return value;
}

/**
 * The restart options with every member that is left out or `undefined` at its default, and
 * each checked: `initialDelayMs` at least 1 ms (a zero delay would never grow), `maxDelayMs`
 * at least `initialDelayMs`, `stableAfterMs` a number or `Infinity`.
 */
export function restartOptions(options: RestartOptions | undefined): Required<RestartOptions> {
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new TypeError(`restart must be an object or false, not ${describeValue(options)}`);
  }
  const initialDelayMs = milliseconds("restart.initialDelayMs", options?.initialDelayMs, RESTART_DEFAULTS.initialDelayMs, 1);
  const maxDelayMs = milliseconds("restart.maxDelayMs", options?.maxDelayMs, Math.max(RESTART_DEFAULTS.maxDelayMs, initialDelayMs), initialDelayMs);
  const stableAfterMs = milliseconds("restart.stableAfterMs", options?.stableAfterMs, RESTART_DEFAULTS.stableAfterMs, 0, true);
  return { initialDelayMs, maxDelayMs, stableAfterMs };
}

function describeValue(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value.slice(0, 40)) : String(value);
}

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
