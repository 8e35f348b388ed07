//! Every input in `fuzz/regressions/line_handler/` (what the `line_handler` fuzz target once
//! found) replayed through the real server with the target's own checks.

use std::path::Path;

use auth_app_server::fuzzing::{Line, Message, check_output, serve_bytes};

fn regressions() -> Vec<(String, Vec<u8>)> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/line_handler");
    let mut inputs: Vec<_> = std::fs::read_dir(&folder)
        .expect("the regressions folder")
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "nothing in {}", folder.display());
    inputs
}

#[test]
fn the_line_handler_fuzz_findings_stay_fixed() {
    for (name, input) in regressions() {
        let lines = serve_bytes(&input);
        if let Err(problem) = check_output(&input, &lines) {
            panic!("{name}: {problem}");
        }
    }
}

/// The first finding: a positional array (`["2.0",3,"getAuthStatus"]`) was read as a request,
/// by position, and answered as one. Inside a batch it is `-32600` now; alone, the array is a batch
/// whose items are not requests.
#[test]
fn a_positional_array_is_not_a_request() {
    let (_, input) = regressions()
        .into_iter()
        .find(|(name, _)| name == "positional-array-request")
        .unwrap();
    let lines = serve_bytes(&input);
    let checked = check_output(&input, &lines).unwrap();
    let invalid =
        |m: &Message| matches!(m, Message::Response { id, outcome: Err(-32600) } if id == "null");
    // Alone, the array is a batch of three values that are not requests.
    assert_eq!(checked.len(), 3, "{lines:#?}");
    assert!(matches!(&checked[0], Line::Batch(items) if items.len() == 1 && invalid(&items[0])));
    assert!(
        matches!(&checked[1], Line::Single(Message::Response { id, outcome: Ok(_) }) if id == "1")
    );
    assert!(
        matches!(&checked[2], Line::Batch(items) if items.len() == 3 && items.iter().all(invalid))
    );
}
