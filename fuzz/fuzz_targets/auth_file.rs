//! `auth.json` bytes through `auth_core::fuzzing::auth_file`: `AuthFile::parse` never panics,
//! a file it accepts is written (`to_bytes`) as bytes that parse back to the same file (less
//! ill-typed advisory members, which are ignored and dropped), and whatever its advisory records
//! (`refresh_backoff`, `tokens.issued_at`, `tokens.refresh_cause`) say, the backoff ends at most
//! 300 s from now and tokens count as stored no later than now.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    auth_core::fuzzing::auth_file(bytes);
});
