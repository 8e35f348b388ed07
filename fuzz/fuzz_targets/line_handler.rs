//! stdin bytes through the whole server: line framing, the JSON-RPC envelope, the handshake,
//! params and the methods. Nothing may panic, and every line written must pass
//! `check_output` (valid JSON-RPC 2.0; each response has exactly one of result and error).

#![no_main]

use auth_app_server::fuzzing::{check_output, serve_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let lines = serve_bytes(input);
    if let Err(problem) = check_output(input, &lines) {
        panic!("{problem}");
    }
});
