//! The documents a refresh writes, pure: `auth.json` with refreshed tokens (what did not come
//! back kept, failure and backoff cleared), with a permanent failure recorded (poisoned), the
//! tokens of a token response, and whether two documents hold the same credentials.

use super::Cause;
use crate::provider::MAX_EXPIRES_IN_SECS;
use crate::provider::TokenResponse;
use crate::provider::classify::RefreshFailure;
use crate::provider::text::capped;
use crate::store::format::{AuthFile, REFRESH_CAUSE_REJECTED, RefreshFailureRecord, StoredTokens};
use crate::time;

/// `base` with `failure` recorded as permanent for the tokens `fingerprint` names; any
/// backoff is gone.
pub(super) fn poisoned(
    mut base: AuthFile,
    failure: &RefreshFailure,
    fingerprint: String,
) -> AuthFile {
    base.refresh_failure = Some(RefreshFailureRecord {
        reason: failure.code.clone().unwrap_or_default(),
        message: capped(&failure.message),
        at: time::now_rfc3339(),
        refresh_token_sha256: fingerprint,
    });
    base.refresh_backoff = None;
    base
}

/// Same credentials (mode, key, access and refresh token)?
pub(crate) fn same_tokens(a: &AuthFile, b: &AuthFile) -> bool {
    let tokens = |f: &AuthFile| {
        f.tokens
            .as_ref()
            .map(|t| (t.access_token.clone(), t.refresh_token.clone()))
    };
    a.auth_mode == b.auth_mode && a.api_key == b.api_key && tokens(a) == tokens(b)
}

/// Tokens from a token response whose request was sent at `sent_at` (unix seconds): expiry
/// `sent_at + expires_in` (clamped), `issued_at` = `sent_at`. Counted from the send, never
/// from the answer's arrival: the provider's clock started after the send.
pub(crate) fn stored_tokens(tokens: TokenResponse, sent_at: i64) -> StoredTokens {
    StoredTokens {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        id_token: tokens.id_token,
        token_type: tokens.token_type,
        scope: tokens.scope,
        expires_at: tokens
            .expires_in
            .map(|secs| sent_at.saturating_add(secs.clamp(0, MAX_EXPIRES_IN_SECS))),
        issued_at: Some(sent_at),
        refresh_cause: None,
        extra: Default::default(),
    }
}

/// `base` with the refreshed tokens, whose request was sent at `sent_at`: the old refresh and
/// id tokens stay when none came back; `last_refresh` is `sent_at`; any recorded failure or
/// backoff is gone; unknown fields are kept.
pub(super) fn refreshed(
    mut base: AuthFile,
    tokens: TokenResponse,
    cause: Cause,
    sent_at: i64,
) -> AuthFile {
    let old = base.tokens.take().expect("oauth credentials have tokens");
    let new = stored_tokens(tokens, sent_at);
    base.tokens = Some(StoredTokens {
        refresh_token: new.refresh_token.or(old.refresh_token),
        id_token: new.id_token.or(old.id_token),
        token_type: new.token_type.or(old.token_type),
        scope: new.scope.or(old.scope),
        refresh_cause: (cause == Cause::Rejected).then(|| REFRESH_CAUSE_REJECTED.to_owned()),
        extra: old.extra,
        ..new
    });
    base.last_refresh = Some(time::rfc3339(sent_at));
    base.refresh_failure = None;
    base.refresh_backoff = None;
    base
}
