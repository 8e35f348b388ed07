//! `fake-issuer`: the tests' fake OAuth 2.0 issuer as a program, for trying the server, its
//! terminal commands and a client by hand, with no real provider (README: "Try a browser and a
//! device sign-in on your machine"). `fake-issuer --help` says how.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use auth_app_server_tests::FakeIssuer;
use auth_app_server_tests::issuer::{CLIENT_ID, IssuerOptions};
use clap::Parser;

const AFTER_HELP: &str = "\
It listens on 127.0.0.1 (a free port) and prints one line on stdout:
  issuer: http://127.0.0.1:PORT  client_id: test-client
It serves discovery (RFC 8414 and OpenID), the authorization code flow with PKCE (GET /authorize
approves at once and redirects back), the device flow (each code approved --approve-after
seconds after the server first asks for it, as a person on another device would), refresh with
rotating refresh tokens, and revocation. `GET <issuer>/stats` answers {\"refreshes\": N}, the
refresh grants it has answered. Nothing is stored: stop it with Ctrl-C.

Try it (in another terminal, with that URL as ISSUER):
  auth-app-server --home /tmp/try login --device --issuer $ISSUER --client-id test-client
  auth-app-server --home /tmp/try login --browser --issuer $ISSUER --client-id test-client
  auth-app-server --home /tmp/try status
  auth-app-server --home /tmp/try token";

/// A fake OAuth 2.0 issuer on 127.0.0.1 that approves every sign-in: for trying
/// auth-app-server's browser and device sign-in without a real provider.
#[derive(Debug, Parser)]
#[command(name = "fake-issuer", version, after_help = AFTER_HELP)]
struct Args {
    /// Approve each device sign-in this many seconds after it starts
    #[arg(long, value_name = "SECS", default_value_t = 3)]
    approve_after: u64,
    /// Lifetime of the access tokens it issues, in seconds (short ones show refreshes)
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    expires_in: i64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let approve_after = Duration::from_secs(args.approve_after);
    let issuer = FakeIssuer::start_with(IssuerOptions {
        expires_in: args.expires_in,
        ..IssuerOptions::default()
    })
    .await;
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
