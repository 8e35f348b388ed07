// Copies the generated protocol bindings (../../schema/typescript, written by
// `auth-app-server generate-json-schema` from protocol/) into src/protocol, where the build
// compiles them into the package's .d.ts files. test/bindings.test.mjs fails when the copy
// differs from what the server binary generates.
import { cpSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const from = join(here, "..", "..", "..", "schema", "typescript");
const to = join(here, "..", "src", "protocol");

rmSync(to, { recursive: true, force: true });
mkdirSync(to, { recursive: true });
const files = readdirSync(from).filter((name) => name.endsWith(".ts"));
for (const name of files) cpSync(join(from, name), join(to, name));
console.log(`copied ${files.length} protocol files from schema/typescript`);
