//! The refresh procedure (SPEC §6): when to refresh, single-flight within the process, the
//! cross-process lock around re-read → HTTP → store, adopting tokens another process stored,
//! poisoning on a permanent failure and backing off after a transient one.

use std::time::{Duration, Instant};

use crate::auth_file::{AuthFile, RefreshFailureRecord, StoredTokens};
use crate::classify::{MAX_BACKOFF, RefreshFailure};
use crate::error::AuthError;
use crate::manager::{AuthManager, View};
use crate::provider::TokenResponse;
use crate::status::{AuthMethod, Credentials, TransientFailure};
use crate::store::{Loaded, Stored, WriteLock};
use crate::time;

/// Why a refresh is asked for.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// A status poll: only a stale access token is refreshed.
    IfStale,
    /// An API rejected the access token with this fingerprint: refresh it if it is still the
    /// current one, stale or not.
    Rejected { access_fingerprint: String },
}

/// What a refresh request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Nothing to do: the token is fresh, or was already replaced.
    NotNeeded,
    Refreshed,
    /// Another process had stored other tokens; they were taken instead.
    Adopted,
    /// Inside the backoff window of an earlier transient failure: no network I/O.
    BackingOff,
    /// These credentials cannot be refreshed here (poisoned, no refresh token, no provider
    /// for their issuer); the reason says which.
    CannotRefresh(String),
    Failed(RefreshFailure),
}

impl AuthManager {
    /// Whether a refresh for `trigger` could hit the network now. Cheap: no lock, no I/O; the
    /// fast path of every poll.
    pub(crate) fn wants_refresh(&self, credentials: &Credentials, trigger: &Trigger) -> bool {
        let due = match trigger {
            Trigger::IfStale => credentials.is_stale(time::now_unix()),
            Trigger::Rejected { access_fingerprint } => credentials
                .bearer()
                .is_some_and(|t| &t.fingerprint() == access_fingerprint),
        };
        due && credentials.poison.is_none()
            && self.refresh_blocker(credentials).is_none()
            && !self.backing_off(credentials)
    }

    /// Why these credentials cannot be refreshed by this server, if they cannot.
    pub(crate) fn refresh_blocker(&self, credentials: &Credentials) -> Option<String> {
        if credentials.method != AuthMethod::Oauth {
            return Some("API keys are not refreshed".into());
        }
        if credentials.refresh_token().is_none() {
            return Some("there is no refresh token: sign in again".into());
        }
        let Some(client) = self.client() else {
            return Some("no OAuth provider is configured, so the tokens cannot be refreshed: configure one or sign in again".into());
        };
        let config = client.config();
        // An issuer still to be found (RFC 9728) is checked by `refresh` once it is known.
        let same_issuer = match (credentials.file.issuer.as_deref(), client.known_issuer()) {
            (None, _) => false,
            (Some(stored), Some(known)) => same_issuer(stored, known),
            (Some(_), None) => true,
        };
        if !same_issuer {
            // A refresh token is only ever sent to the issuer recorded with it.
            return Some(
                "the tokens were issued by another provider than the configured one: sign in again"
                    .into(),
            );
        }
        if credentials
            .file
            .client_id
            .as_deref()
            .is_some_and(|id| id != config.client_id)
        {
            return Some("the tokens were issued to another client_id than the configured one: sign in again".into());
        }
        None
    }

    fn backing_off(&self, credentials: &Credentials) -> bool {
        let inner = self.lock_inner();
        inner.transient.as_ref().is_some_and(|t| {
            credentials.refresh_fingerprint.as_deref() == Some(t.fingerprint.as_str())
                && t.retry_at > Instant::now()
        })
    }

    /// Refreshes if `trigger` still calls for it once this caller's turn comes. Concurrent
    /// callers queue on one gate; those behind the first find the outcome already stored.
    pub(crate) async fn refresh(&self, trigger: Trigger) -> Result<RefreshOutcome, AuthError> {
        let _turn = self.write_gate.lock().await;
        let View::Present(credentials) = self.sync()? else {
            return Ok(RefreshOutcome::CannotRefresh(
                "no credentials are stored: sign in".into(),
            ));
        };
        if let Some(poison) = &credentials.poison {
            return Ok(RefreshOutcome::CannotRefresh(poison.message.clone()));
        }
        if let Some(reason) = self.refresh_blocker(&credentials) {
            return Ok(RefreshOutcome::CannotRefresh(reason));
        }
        if self.backing_off(&credentials) {
            return Ok(RefreshOutcome::BackingOff);
        }
        if !self.wants_refresh(&credentials, &trigger) {
            return Ok(RefreshOutcome::NotNeeded);
        }

        let client = self.client().expect("checked by refresh_blocker");
        match client.issuer().await {
            Ok(issuer)
                if credentials
                    .file
                    .issuer
                    .as_deref()
                    .is_some_and(|s| same_issuer(s, &issuer)) => {}
            Ok(_) => {
                let reason = "the tokens were issued by another provider than the configured one: sign in again";
                return Ok(RefreshOutcome::CannotRefresh(reason.into()));
            }
            Err(reason) => {
                let failure = RefreshFailure::transient(format!("{reason}; will retry"));
                let fingerprint = credentials.refresh_fingerprint.clone().unwrap_or_default();
                self.record_transient(fingerprint, &failure);
                self.announce_current();
                return Ok(RefreshOutcome::Failed(failure));
            }
        }

        let lock = self.lock_file().await?;
        // Another process may have refreshed (or poisoned) while this one waited for the lock.
        let base = match self.reread_same_tokens(&credentials)? {
            Ok(base) => base,
            Err(outcome) => return Ok(outcome),
        };
        let refresh_token = credentials
            .refresh_token()
            .expect("checked by refresh_blocker")
            .clone();
        let fingerprint = refresh_token.fingerprint();
        tracing::info!(refresh_token = %&fingerprint[..12], "refreshing the access token");
        match client.refresh(&refresh_token).await {
            Ok(tokens) => {
                let file = refreshed(base, tokens);
                self.store_locked(&lock, file)?;
                self.lock_inner().transient = None;
                self.announce_current();
                tracing::info!("access token refreshed");
                Ok(RefreshOutcome::Refreshed)
            }
            Err(failure) if failure.is_permanent() => {
                // Lost a rotation race to a process that ignores the lock? Its tokens win.
                let base = match self.reread_same_tokens(&credentials)? {
                    Ok(base) => base,
                    Err(outcome) => return Ok(outcome),
                };
                tracing::warn!(
                    code = failure.code.as_deref().unwrap_or(""),
                    "refresh failed permanently; credentials poisoned until the next sign-in"
                );
                self.poison(&lock, base, &fingerprint, &failure);
                Ok(RefreshOutcome::Failed(failure))
            }
            Err(failure) => {
                self.record_transient(fingerprint, &failure);
                tracing::warn!(message = %failure.message, "refresh failed transiently");
                self.announce_current();
                Ok(RefreshOutcome::Failed(failure))
            }
        }
    }

    /// Re-reads `auth.json` under the lock. `Ok(file)` when it still holds the tokens about to
    /// be refreshed; otherwise the new content is adopted and the outcome returned.
    fn reread_same_tokens(
        &self,
        credentials: &Credentials,
    ) -> Result<Result<AuthFile, RefreshOutcome>, AuthError> {
        let loaded = self.store.load().map_err(|e| self.unreadable(e))?;
        let same =
            matches!(&loaded.stored, Stored::Present(file) if same_tokens(file, &credentials.file));
        if !same {
            tracing::info!(
                "another process changed the credentials; adopting them instead of refreshing"
            );
            self.install(loaded, false);
            return Ok(Err(RefreshOutcome::Adopted));
        }
        let Stored::Present(file) = loaded.stored else {
            unreachable!("checked above")
        };
        if file.refresh_failure.is_some() && Credentials::new((*file).clone()).poison.is_some() {
            let reason = file
                .refresh_failure
                .as_ref()
                .map(|r| r.message.clone())
                .unwrap_or_default();
            self.install(
                Loaded {
                    stamp: loaded.stamp,
                    stored: Stored::Present(file),
                },
                false,
            );
            return Ok(Err(RefreshOutcome::CannotRefresh(reason)));
        }
        Ok(Ok(*file))
    }

    /// Writes `file` (the lock is held) and makes it the current view.
    fn store_locked(&self, lock: &WriteLock, file: AuthFile) -> Result<(), AuthError> {
        let stamp = self
            .store
            .write(lock, &file)
            .map_err(AuthError::Unwritable)?;
        self.install(
            Loaded {
                stamp: Some(stamp),
                stored: Stored::Present(Box::new(file)),
            },
            false,
        );
        Ok(())
    }

    /// Records the permanent failure in `auth.json`. If that write fails, the poison is kept in
    /// memory so this process still never retries.
    fn poison(
        &self,
        lock: &WriteLock,
        mut file: AuthFile,
        fingerprint: &str,
        failure: &RefreshFailure,
    ) {
        file.refresh_failure = Some(RefreshFailureRecord {
            reason: failure.code.clone().unwrap_or_default(),
            message: failure.message.clone(),
            at: time::now_rfc3339(),
            refresh_token_sha256: fingerprint.to_owned(),
        });
        if let Err(error) = self.store_locked(lock, file.clone()) {
            tracing::error!(%error, "cannot record the poisoned credentials; this process will still not retry them");
            self.install_in_memory(file);
        }
    }

    fn record_transient(&self, fingerprint: String, failure: &RefreshFailure) {
        let mut inner = self.lock_inner();
        let consecutive = inner
            .transient
            .as_ref()
            .filter(|t| t.fingerprint == fingerprint)
            .map_or(1, |t| t.consecutive + 1);
        let doubling = Duration::from_secs(1u64 << (consecutive - 1).min(9));
        let wait = failure.retry_after.unwrap_or(doubling).min(MAX_BACKOFF);
        inner.transient = Some(TransientFailure {
            fingerprint,
            code: failure.code.clone(),
            message: failure.message.clone(),
            consecutive,
            retry_at: Instant::now() + wait,
        });
    }
}

/// Issuer identifiers compare as URLs written with or without a trailing slash.
pub(crate) fn same_issuer(stored: &str, issuer: &reqwest::Url) -> bool {
    stored.trim_end_matches('/') == issuer.as_str().trim_end_matches('/')
}

/// Same credentials (mode, key, access and refresh token)?
fn same_tokens(a: &AuthFile, b: &AuthFile) -> bool {
    let tokens = |f: &AuthFile| {
        f.tokens
            .as_ref()
            .map(|t| (t.access_token.clone(), t.refresh_token.clone()))
    };
    a.auth_mode == b.auth_mode && a.api_key == b.api_key && tokens(a) == tokens(b)
}

/// `base` with the refreshed tokens: the old refresh and id tokens stay when none came back;
/// `last_refresh` is now; any recorded failure is gone; unknown fields are kept.
fn refreshed(mut base: AuthFile, tokens: TokenResponse) -> AuthFile {
    let old = base.tokens.take().expect("oauth credentials have tokens");
    base.tokens = Some(StoredTokens {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token.or(old.refresh_token),
        id_token: tokens.id_token.or(old.id_token),
        token_type: tokens.token_type.or(old.token_type),
        scope: tokens.scope.or(old.scope),
        expires_at: tokens.expires_in.map(|secs| time::now_unix() + secs),
        extra: old.extra,
    });
    base.last_refresh = Some(time::now_rfc3339());
    base.refresh_failure = None;
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn file(access: &str, refresh: Option<&str>) -> AuthFile {
        let tokens = StoredTokens {
            access_token: Secret::new(access),
            refresh_token: refresh.map(Secret::new),
            id_token: Some(Secret::new("id-old")),
            token_type: Some("Bearer".into()),
            scope: Some("a".into()),
            expires_at: Some(1),
            extra: Default::default(),
        };
        let mut file = AuthFile::oauth(Some("https://i".into()), Some("c".into()), tokens);
        let tokens = file.tokens.as_mut().unwrap();
        tokens.extra.insert("x_token_field", &serde_json::json!(1));
        file.extra.insert("x_top", &serde_json::json!("kept"));
        file
    }

    #[test]
    fn a_refresh_keeps_what_did_not_come_back_and_clears_the_failure() {
        let mut base = file("at1", Some("rt1"));
        base.refresh_failure = Some(RefreshFailureRecord {
            reason: "invalid_grant".into(),
            message: "m".into(),
            at: "t".into(),
            refresh_token_sha256: "other".into(),
        });
        let response = TokenResponse {
            access_token: Secret::new("at2"),
            refresh_token: None,
            id_token: None,
            token_type: None,
            scope: None,
            expires_in: Some(3600),
        };
        let new = refreshed(base, response);
        let tokens = new.tokens.as_ref().unwrap();
        assert_eq!(tokens.access_token.expose(), "at2");
        assert_eq!(tokens.refresh_token.as_ref().unwrap().expose(), "rt1");
        assert_eq!(tokens.id_token.as_ref().unwrap().expose(), "id-old");
        assert!(tokens.expires_at.unwrap() > time::now_unix() + 3500);
        assert_eq!(tokens.extra.get("x_token_field"), Some("1"));
        assert_eq!(new.extra.get("x_top"), Some(r#""kept""#));
        assert!(new.refresh_failure.is_none() && new.last_refresh.is_some());
    }

    #[test]
    fn tokens_are_compared_by_access_and_refresh_token() {
        assert!(same_tokens(&file("a", Some("r")), &file("a", Some("r"))));
        assert!(!same_tokens(&file("a", Some("r")), &file("a2", Some("r"))));
        assert!(!same_tokens(&file("a", Some("r")), &file("a", Some("r2"))));
        assert!(!same_tokens(
            &file("a", Some("r")),
            &AuthFile::api_key(Secret::new("a"))
        ));
    }
}
