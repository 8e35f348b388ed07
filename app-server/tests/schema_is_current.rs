//! SPEC §11: `schema/` is exactly what `generate-json-schema` writes from `protocol/`.
//! (Being an integration test of this package, it also makes `cargo test` build the binary
//! that the end-to-end tests in `tests/` spawn.)

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&path).unwrap(),
            )
        })
        .collect()
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
        generated.len() >= 15,
        "one file per wire type plus the bundle"
    );
}
