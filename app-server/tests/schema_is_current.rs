//! docs/protocol.md (schema and bindings): `schema/` (JSON Schema and TypeScript bindings) is exactly what
//! `generate-json-schema` writes from `protocol/`.
//! (Being an integration test of this package, it also makes `cargo test` build the binary
//! that the end-to-end tests in `tests/` spawn.)

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Every file below `dir`, by path relative to it.
fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries =
            std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("read {}: {e}", folder.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.insert(relative, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn checked_in_schema_matches_the_generated_one() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_auth-app-server"))
        .args(["generate-json-schema", "--out"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let generated = read_dir(out.path());
    let checked_in = read_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema"));
    assert_eq!(
        generated.keys().collect::<Vec<_>>(),
        checked_in.keys().collect::<Vec<_>>(),
        "schema/ has other files than the generator writes; run `cargo run -p auth-app-server -- generate-json-schema --out schema`"
    );
    for (name, text) in &generated {
        assert_eq!(
            text, &checked_in[name],
            "schema/{name} is stale; run `cargo run -p auth-app-server -- generate-json-schema --out schema`"
        );
    }
    assert!(
        generated.len() >= 15 + 24,
        "one schema per wire type, the bundle, and the TypeScript bindings"
    );
    assert!(generated.contains_key("typescript/index.ts"));
}
