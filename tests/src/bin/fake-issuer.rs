//! The fake issuer as a program, for trying the server and its terminal commands by hand:
//! `cargo run -p auth-app-server-tests --bin fake-issuer -- [--approve-after SECS]`.
//! Prints the issuer URL; approves every device login SECS seconds after it starts
//! (default 3), as a person on another device would. `GET <issuer>/stats` answers
//! `{"refreshes": N}`, the refresh grants it has seen (the TypeScript client's tests count them).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use auth_app_server_tests::FakeIssuer;
use auth_app_server_tests::issuer::CLIENT_ID;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let approve_after = args
        .iter()
        .position(|a| a == "--approve-after")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .map_or(Duration::from_secs(3), Duration::from_secs);
    let issuer = FakeIssuer::start().await;
    println!("issuer: {}  client_id: {CLIENT_ID}", issuer.url());
    let mut seen: HashMap<String, Instant> = HashMap::new();
    loop {
        for code in issuer.pending_user_codes() {
            let first = *seen.entry(code.clone()).or_insert_with(Instant::now);
            if first.elapsed() >= approve_after {
                issuer.decide_device(&code, true);
                eprintln!("approved {code}");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
