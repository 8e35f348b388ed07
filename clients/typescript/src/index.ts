// @auth-app-server/client: a typed client of auth-app-server for Node.js hosts (Electron apps,
// VS Code extensions, CLIs). The protocol's types (./protocol, generated from the server's
// method list) are exported with it.

export { AuthClient, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_START_TIMEOUT_MS } from "./client.js";
export type { AuthClientOptions, CredentialOption, ParamsArgs, RequestArgs, RequestMethod, RequestOptions, RestartEvent } from "./client.js";
export { chooseCredential, DEFAULT_CREDENTIAL, resourceCoverage, resourceCovers } from "./credential-choice.js";
export type { CredentialResource } from "./credential-choice.js";
export { resolveBinary, serverPackageName, SERVER_PACKAGE_PLATFORMS } from "./binary.js";
export type { BinarySource, ResolveContext, ResolvedBinary } from "./binary.js";
export {
  AuthFailureError,
  AuthRequiredError,
  ClientDisposedError,
  CredentialChoiceError,
  RpcError,
  ServerExitedError,
  ServerNotFoundError,
  TimeoutError,
} from "./errors.js";
export type { CredentialChoiceReason } from "./errors.js";
export { afterRejection, restartDelay, restartOptions, RESTART_DEFAULTS } from "./policy.js";
export type { RestartOptions } from "./policy.js";
export { ErrorCode } from "./protocol/index.js";
export type * from "./protocol/index.js";
