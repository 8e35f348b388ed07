//! Every input in `fuzz/regressions/auth_file/` (what the `auth_file` fuzz target once found)
//! replayed with the target's own checks.

use std::path::Path;

use auth_core::store::format::AuthFile;

#[test]
fn the_auth_file_fuzz_findings_stay_fixed() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/auth_file");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&folder).expect("the regressions folder") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        eprintln!("replaying {}", path.display());
        auth_core::fuzzing::auth_file(&bytes);
        replayed += 1;
    }
    assert!(replayed > 0, "nothing in {}", folder.display());
}

/// The first finding: a 114-digit integer in another tool's member came back as a different
/// float. Unknown members are now kept as their JSON text.
#[test]
fn a_huge_integer_in_another_tools_member_is_written_back_as_it_was() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/auth_file");
    let bytes = std::fs::read(folder.join("huge-integer-in-another-tools-member.json")).unwrap();
    let file = AuthFile::parse(&bytes).unwrap();
    let written = String::from_utf8(file.to_bytes()).unwrap();
    let digits = format!("-{}0", "1".repeat(113));
    assert!(written.contains(&format!(r#""b": {digits}"#)), "{written}");
}
