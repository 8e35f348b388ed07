// getAuthStatus round trips from a node host, one at a time: node spawns its children on
// socket pairs, not pipes, so this measures the server the way node hosts (IDE extensions,
// the TypeScript client) see it. No dependencies.
//
//   taskset -c 0 node tests/src/bin/bench/node-round-trip.mjs target/release/auth-app-server [calls]
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [binary, calls = "20000"] = process.argv.slice(2);
if (!binary) {
  console.error("usage: node node-round-trip.mjs PATH/TO/auth-app-server [calls]");
  process.exit(2);
}
const n = Number(calls);
const home = mkdtempSync(join(tmpdir(), "node-round-trip-"));
writeFileSync(
  join(home, "auth.json"),
  JSON.stringify({ version: 1, auth_mode: "api_key", api_key: "sk-bench-0123456789abcdef" }),
);
const child = spawn(binary, ["--home", home], { stdio: ["pipe", "pipe", "ignore"] });

let buffered = "";
let answered = null;
child.stdout.setEncoding("utf8");
child.stdout.on("data", (chunk) => {
  buffered += chunk;
  let end;
  while ((end = buffered.indexOf("\n")) >= 0) {
    const line = buffered.slice(0, end);
    buffered = buffered.slice(end + 1);
    answered?.(line);
  }
});
const call = (id, method, params) =>
  new Promise((resolve) => {
    answered = resolve;
    child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", id, method, params })}\n`);
  });

await call(0, "initialize", { clientInfo: { name: "node-round-trip", version: "1" } });
const times = [];
for (let id = 1; id <= n; id++) {
  const start = process.hrtime.bigint();
  const line = await call(id, "getAuthStatus", {});
  times.push(Number(process.hrtime.bigint() - start) / 1000);
  if (id === 1 && !JSON.parse(line).result) throw new Error(`unexpected answer: ${line}`);
}
times.sort((a, b) => a - b);
const at = (p) => times[Math.min(times.length - 1, Math.floor(times.length * p))].toFixed(1);
console.log(`getAuthStatus round trip from node, ${n} calls: p50 ${at(0.5)} µs, p99 ${at(0.99)} µs`);
child.stdin.end();
child.on("exit", () => rmSync(home, { recursive: true, force: true }));
