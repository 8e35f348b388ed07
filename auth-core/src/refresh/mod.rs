//! Refreshing the access token (docs/refresh-policy.md) by the rules of [`crate::policy`]: one
//! refresh carried out (lock, re-read, grant, store) in `run`, writing the
//! documents of `document`; and what to do when an API rejects a token (`reportAuthFailure`)
//! in [`report`]. This façade re-exports what the rest of the crate uses.

mod document;
pub mod report;
mod run;

pub(crate) use crate::policy::same_issuer;
pub(crate) use document::{same_tokens, stored_tokens};
pub use run::{Cause, RefreshOutcome};
pub(crate) use run::{Finished, Job, NewView, poison_dead_token, run, store_unsaved};
