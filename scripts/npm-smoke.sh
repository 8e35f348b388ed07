#!/usr/bin/env bash
# The host's way in, end to end and offline: a fresh Node.js project gets nothing but the two
# tarballs made by scripts/package-npm.mjs, installed without a registry (an empty npm cache and
# --offline), and scripts/npm-smoke.mjs there starts the server through the client with no path
# configured, signs in with an API key and reads the token back.
#
#   scripts/npm-smoke.sh <client .tgz> <platform .tgz>
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
client="$(realpath "$1")"
platform="$(realpath "$2")"

project="$(mktemp -d)"
trap 'rm -rf "$project"' EXIT
cd "$project"
printf '{ "name": "npm-smoke", "private": true, "version": "0.0.0", "type": "module" }\n' > package.json
# --offline with a cache of its own: nothing can come from a registry or an earlier install.
npm install --offline --cache "$project/.npm-cache" --no-audit --no-fund --loglevel=error "$client" "$platform"
cp "$here/npm-smoke.mjs" .

# Nothing but the package can provide the server: no AUTH_APP_SERVER_BIN, and a PATH with only
# node on it.
nodedir="$project/.node-only"
mkdir "$nodedir"
ln -s "$(command -v node)" "$nodedir/node"
if PATH="$nodedir" command -v auth-app-server >/dev/null; then
  echo "npm-smoke: auth-app-server is on the reduced PATH" >&2
  exit 1
fi
env -u AUTH_APP_SERVER_BIN PATH="$nodedir" node npm-smoke.mjs
