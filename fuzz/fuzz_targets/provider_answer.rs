//! Any bytes as a provider's answer (token response, token endpoint error, device
//! authorization, metadata document): never a panic, and what is accepted stays in bounds
//! (see `auth_core::fuzzing::provider_answer`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| auth_core::fuzzing::provider_answer(data));
