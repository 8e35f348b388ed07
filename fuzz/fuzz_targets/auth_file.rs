//! `auth.json` bytes through `AuthFile::parse`: it never panics, and a file it accepts is
//! written (`to_bytes`) as bytes that parse back to the same file.

#![no_main]

use auth_core::auth_file::AuthFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(file) = AuthFile::parse(bytes) {
        let written = file.to_bytes();
        let again = AuthFile::parse(&written).expect("what to_bytes writes parses");
        assert_eq!(again, file, "the file changed on a round trip");
        assert_eq!(again.to_bytes(), written, "writing is not stable");
    }
});
