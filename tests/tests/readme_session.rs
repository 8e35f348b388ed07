//! The README's quick start shows "a real session" (`>` sent, `<` received). This replays it
//! against the binary, waiting for each answer as the README says to, and checks that the
//! server sends exactly the lines shown (as JSON values), in that order, so the README stays
//! true when a wire type grows.

use std::path::Path;

use auth_app_server_tests::ServerProcess;
use serde_json::Value;

const START: &str = "A real session (`>` sent, `<` received):";

/// Each line sent, with the lines the README shows received after it.
fn readme_session() -> Vec<(String, Vec<Value>)> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("read README.md");
    let after = &readme[readme.find(START).expect("the quick start session") + START.len()..];
    let block = after
        .split("```")
        .nth(1)
        .expect("a code block after the session's heading");
    let mut steps: Vec<(String, Vec<Value>)> = Vec::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(sent) = line.strip_prefix("> ") {
            steps.push((sent.to_owned(), Vec::new()));
        } else if let Some(received) = line.strip_prefix("< ") {
            let shown = serde_json::from_str(received)
                .unwrap_or_else(|e| panic!("README line is not JSON ({e}): {received}"));
            steps
                .last_mut()
                .expect("a received line follows a sent one")
                .1
                .push(shown);
        } else {
            panic!("a session line starts with `> ` or `< `: {line}");
        }
    }
    steps
}

#[tokio::test]
async fn the_quick_start_session_is_what_the_server_answers() {
    let steps = readme_session();
    assert!(steps.len() >= 5, "the session has its steps: {steps:?}");
    let home = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(home.path()).await;
    for (sent, shown) in steps {
        let id = serde_json::from_str::<Value>(&sent).unwrap()["id"].clone();
        server.send_line(&sent).await;
        let mut received = Vec::new();
        loop {
            let message = server.next_message().await;
            let answered = message.get("id") == Some(&id);
            received.push(message);
            if answered {
                break;
            }
        }
        assert_eq!(received, shown, "after {sent}");
    }
}
