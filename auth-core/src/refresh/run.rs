//! One refresh, carried out (docs/refresh-policy.md): take the cross-process lock (bounded),
//! re-read `auth.json`, send the refresh grant, store the outcome; and storing an outcome whose
//! write failed, later. Whether to refresh at all, and how long a failure backs off, is decided
//! by `policy`; this module only performs the refresh and reports what the file now holds, and
//! the credential installs that.

use std::sync::Arc;
use std::time::Duration;

use super::document::{poisoned, refreshed, same_tokens};
use crate::policy::{Backoff, Blocker, same_issuer};
use crate::provider::ProviderClient;
use crate::provider::classify::RefreshFailure;
use crate::provider::text::{capped, shown};
use crate::registration::{self, Replacement};
use crate::status::Credentials;
use crate::store::format::{AuthFile, RefreshBackoffRecord};
use crate::store::{AuthStore, Loaded, Stored, WriteLock, off_runtime};
use crate::time;

/// Why this refresh was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A poll found the access token stale.
    Stale,
    /// A client reported that an API rejected the current access token.
    Rejected,
}

/// What a refresh came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    Refreshed,
    /// Another process had stored other tokens; they were taken instead.
    Adopted,
    /// Another process recorded a transient failure meanwhile: its backoff applies here too.
    BackingOff,
    /// These credentials cannot be refreshed here (poisoned meanwhile, another provider,
    /// unreadable file); the reason says which.
    CannotRefresh(String),
    Failed(RefreshFailure),
}

/// What the credentials are now, for the credential to install.
#[derive(Debug)]
pub(crate) enum NewView {
    /// Read from (or just written to) the file.
    Loaded(Loaded),
    /// Decided but not stored (the write failed): this process acts on it until the file
    /// changes, and stores it later ([`store_unsaved`]).
    Unsaved(Box<AuthFile>),
}

/// The result of [`run`].
#[derive(Debug)]
pub(crate) struct Finished {
    pub outcome: RefreshOutcome,
    pub view: Option<NewView>,
    /// A transient failure that could not be recorded in the file (no lock, no issuer): this
    /// process honours it alone.
    pub unrecorded: Option<Backoff>,
}

/// One refresh of `snapshot`'s tokens.
pub(crate) struct Job {
    pub store: AuthStore,
    pub client: Arc<ProviderClient>,
    pub snapshot: Arc<Credentials>,
    pub cause: Cause,
    pub lock_timeout: Duration,
    /// This process's own unrecorded backoff, for counting consecutive failures.
    pub unrecorded: Option<Backoff>,
    /// When `snapshot` is a decision this process could not store: what the store held when
    /// it was decided (the store holding it still is no change by another process).
    pub unsaved_from: Option<Arc<AuthFile>>,
}

pub(crate) async fn run(job: Job) -> Finished {
    let (Some(refresh_token), Some(fingerprint)) = (
        job.snapshot.refresh_token().cloned(),
        job.snapshot.refresh_fingerprint.clone(),
    ) else {
        return Finished::outcome(RefreshOutcome::CannotRefresh(
            Blocker::NoRefreshToken.message().into(),
        ));
    };
    // The backoff so far, which a transient failure extends.
    let previous = job.snapshot.backoff_with(job.unrecorded.as_ref());
    match job.client.issuer().await {
        Ok(issuer)
            if job
                .snapshot
                .file
                .issuer
                .as_deref()
                .is_some_and(|stored| same_issuer(stored, &issuer)) => {}
        Ok(_) => {
            return Finished::outcome(RefreshOutcome::CannotRefresh(
                Blocker::OtherIssuer.message().into(),
            ));
        }
        Err(error) => {
            let failure = RefreshFailure::transient(format!("{error}; will retry"));
            return Finished::unrecorded(failure, fingerprint, previous.as_ref());
        }
    }

    let lock = match job.store.lock_within(job.lock_timeout).await {
        Ok(lock) => lock,
        Err(error) => {
            tracing::warn!(%error, "refresh not attempted: auth.json.lock is busy or unusable");
            let failure = RefreshFailure::transient(format!(
                "{error}; will retry (the current token is used meanwhile while it lasts)"
            ));
            return Finished::unrecorded(failure, fingerprint, previous.as_ref());
        }
    };
    let unsaved_from = job.unsaved_from.as_deref();
    // Another process may have refreshed, poisoned or backed off while this one waited.
    let base = match reread_off_thread(&job.store, &job.snapshot.file, unsaved_from, true).await {
        Ok(base) => base,
        Err(finished) => return *finished,
    };
    tracing::info!(refresh_token = %&fingerprint[..12], cause = ?job.cause, "refreshing the access token");
    let Some(client_id) = job
        .client
        .client_id_for(job.snapshot.file.client_id.as_deref())
    else {
        return Finished::outcome(RefreshOutcome::CannotRefresh(
            "the tokens do not say which client_id they were issued to: sign in again".into(),
        ));
    };
    match job.client.refresh(&refresh_token, &client_id).await {
        Ok(issued) => {
            // Its lifetime counts from when the request was sent, not from when the answer
            // arrived: an answer that took seconds must not make the token outlive the
            // provider's idea of it.
            let sent_at = issued.sent_at();
            let file = refreshed(base, issued.tokens, job.cause, sent_at);
            tracing::info!("access token refreshed");
            Finished {
                outcome: RefreshOutcome::Refreshed,
                view: Some(store_off_thread(&job.store, lock, file).await),
                unrecorded: None,
            }
        }
        Err(failure) if failure.is_permanent() => {
            // Lost a rotation race to a process that ignores the lock? Its tokens win.
            let base = match reread_off_thread(&job.store, &job.snapshot.file, unsaved_from, false)
                .await
            {
                Ok(base) => base,
                Err(finished) => return *finished,
            };
            tracing::warn!(
                code = failure.code.as_deref().unwrap_or(""),
                "refresh failed permanently; credentials poisoned until the next sign-in"
            );
            let failure = match (&job.client.config().client_id, &base.issuer) {
                (None, Some(issuer)) if failure.code.as_deref() == Some("invalid_client") => {
                    let replacement = registration::replace_rejected(
                        &job.client,
                        &job.store,
                        &lock,
                        issuer,
                        &client_id,
                    )
                    .await;
                    registration_replaced(failure, replacement)
                }
                _ => failure,
            };
            poison(&job.store, lock, base, failure, fingerprint).await
        }
        Err(failure) => {
            tracing::warn!(message = %failure.message, "refresh failed transiently");
            let mut base = base;
            let backoff = next_backoff(previous.as_ref(), fingerprint, &failure);
            base.refresh_backoff = Some(RefreshBackoffRecord {
                retry_at: backoff.retry_at_secs(),
                refresh_token_sha256: backoff.fingerprint,
                failures: backoff.failures,
                message: capped(&backoff.message),
                code: backoff.code,
            });
            Finished {
                outcome: RefreshOutcome::Failed(failure),
                view: Some(store_off_thread(&job.store, lock, base).await),
                unrecorded: None,
            }
        }
    }
}

/// A rejected access token without a refresh token is dead: under the lock, record it as a
/// permanent failure keyed to the access token (as [`Credentials::failure_key`] reads it), so
/// that every poll and every process says `needsLogin`. Without the lock the decision is kept
/// in this process only.
pub(crate) async fn poison_dead_token(
    store: &AuthStore,
    snapshot: &Credentials,
    unsaved_from: Option<&AuthFile>,
    lock_timeout: Duration,
) -> Finished {
    let failure = RefreshFailure {
        kind: crate::status::RefreshErrorKind::Permanent,
        code: None,
        message:
            "the access token was rejected and there is no refresh token to renew it: sign in again"
                .into(),
        retry_after: None,
    };
    let Some(fingerprint) = snapshot.failure_key.clone() else {
        return Finished::outcome(RefreshOutcome::CannotRefresh(failure.message));
    };
    tracing::warn!(
        "the current access token was rejected and cannot be refreshed; credentials poisoned until the next sign-in"
    );
    let lock = match store.lock_within(lock_timeout).await {
        Ok(lock) => lock,
        Err(error) => {
            tracing::warn!(%error, "cannot record the dead token: auth.json.lock is busy or unusable; this process keeps it in memory");
            let file = poisoned(snapshot.file.clone(), &failure, fingerprint);
            return Finished {
                outcome: RefreshOutcome::Failed(failure),
                view: Some(NewView::Unsaved(Box::new(file))),
                unrecorded: None,
            };
        }
    };
    match reread_off_thread(store, &snapshot.file, unsaved_from, false).await {
        Ok(base) => poison(store, lock, base, failure, fingerprint).await,
        Err(finished) => *finished,
    }
}

/// The message of an `invalid_client` answer to a client this app registered itself: the
/// registration was replaced (or will be at the next sign-in), and signing in again helps,
/// unlike with a configured client_id.
fn registration_replaced(mut failure: RefreshFailure, replacement: Replacement) -> RefreshFailure {
    let what = match replacement {
        Replacement::NotRegistered => return failure,
        Replacement::Replaced(client_id) => {
            tracing::info!(client_id = %shown(&client_id), "client registration replaced after invalid_client");
            "the client registration was replaced by a new one".to_owned()
        }
        Replacement::AlreadyReplaced => {
            "another process has already replaced the client registration".to_owned()
        }
        Replacement::Failed(why) => {
            tracing::warn!(%why, "registering a new client failed; the next sign-in registers");
            format!("registering a new client failed ({why}); the next sign-in registers one")
        }
    };
    failure.message = format!(
        "the provider no longer accepts this app's registered client (invalid_client): {what}; sign in again"
    );
    failure
}

/// Runs `work` with a clone of `store` on a blocking thread ([`off_runtime`]): a re-read or a
/// write may wait on the disk (two fsyncs) or the keyring (up to its 2 s bound each call), and
/// the runtime's one thread answers every poll meanwhile.
async fn off_thread<T: Send + 'static>(
    store: &AuthStore,
    work: impl FnOnce(&AuthStore) -> T + Send + 'static,
) -> T {
    let store = store.clone();
    off_runtime(move || work(&store)).await
}

/// [`reread`], off the runtime's thread.
async fn reread_off_thread(
    store: &AuthStore,
    expected: &AuthFile,
    unsaved_from: Option<&AuthFile>,
    honour_backoff: bool,
) -> Result<AuthFile, Box<Finished>> {
    let (expected, unsaved_from) = (expected.clone(), unsaved_from.cloned());
    off_thread(store, move |store| {
        reread(store, &expected, unsaved_from.as_ref(), honour_backoff)
    })
    .await
}

/// [`store`], off the runtime's thread; the lock is released when it is done (even if the
/// caller stopped waiting).
async fn store_off_thread(auth_store: &AuthStore, lock: WriteLock, file: AuthFile) -> NewView {
    off_thread(auth_store, move |auth_store| store(auth_store, &lock, file)).await
}

/// Stores `base` poisoned by `failure`, then releases the lock.
async fn poison(
    auth_store: &AuthStore,
    lock: WriteLock,
    base: AuthFile,
    failure: RefreshFailure,
    fingerprint: String,
) -> Finished {
    let file = poisoned(base, &failure, fingerprint);
    Finished {
        outcome: RefreshOutcome::Failed(failure),
        view: Some(store_off_thread(auth_store, lock, file).await),
        unrecorded: None,
    }
}

impl Finished {
    fn outcome(outcome: RefreshOutcome) -> Self {
        Self {
            outcome,
            view: None,
            unrecorded: None,
        }
    }

    /// A transient failure before the lock was held: backed off in this process only.
    fn unrecorded(
        failure: RefreshFailure,
        fingerprint: String,
        previous: Option<&Backoff>,
    ) -> Self {
        let backoff = next_backoff(previous, fingerprint, &failure);
        Self {
            outcome: RefreshOutcome::Failed(failure),
            view: None,
            unrecorded: Some(backoff),
        }
    }
}

/// The backoff after the transient `failure` of the refresh token `fingerprint`, from now.
fn next_backoff(
    previous: Option<&Backoff>,
    fingerprint: String,
    failure: &RefreshFailure,
) -> Backoff {
    Backoff::next(
        previous,
        fingerprint,
        failure.retry_after,
        failure.code.clone(),
        failure.message.clone(),
        time::now_ms(),
    )
}

/// Re-reads `auth.json` under the lock. `Ok(file)` when it still holds the tokens of
/// `expected` (and, when `honour_backoff`, no other process has since recorded a backoff that
/// is still running); otherwise what the file now holds, to adopt. When `expected` is a
/// decision this process could not store, the file still holding what it was decided from
/// (`unsaved_from`) is no change either: `expected` is what the file should hold, and is the
/// base.
fn reread(
    store: &AuthStore,
    expected: &AuthFile,
    unsaved_from: Option<&AuthFile>,
    honour_backoff: bool,
) -> Result<AuthFile, Box<Finished>> {
    let loaded = match store.load() {
        Ok(loaded) => loaded,
        Err(error) => {
            return Err(Box::new(Finished::outcome(RefreshOutcome::Failed(
                RefreshFailure::transient(format!("{error}; will retry")),
            ))));
        }
    };
    let adopt = |outcome, loaded| {
        Err(Box::new(Finished {
            outcome,
            view: Some(NewView::Loaded(loaded)),
            unrecorded: None,
        }))
    };
    let file = match &loaded.stored {
        Stored::Present(file) if same_tokens(file, expected) => &**file,
        Stored::Present(file) if unsaved_from.is_some_and(|from| same_tokens(file, from)) => {
            expected
        }
        Stored::Unreadable(reason) => {
            let reason = format!("auth.json cannot be read: {reason}");
            return adopt(RefreshOutcome::CannotRefresh(reason), loaded);
        }
        _ => {
            tracing::info!(
                "another process changed the credentials; adopting them instead of refreshing"
            );
            return adopt(RefreshOutcome::Adopted, loaded);
        }
    };
    let now = Credentials::new(file.clone());
    if let Some(poison) = &now.poison {
        let reason = poison.message.clone();
        return adopt(RefreshOutcome::CannotRefresh(reason), loaded);
    }
    if honour_backoff
        && now
            .backoff
            .as_ref()
            .is_some_and(|b| b.is_active(time::now_ms()))
    {
        return adopt(RefreshOutcome::BackingOff, loaded);
    }
    Ok(now.file)
}

/// Writes `file` (the lock is held). A failed write keeps the decision in memory so that this
/// process still acts on it (never retrying poisoned credentials, using rotated tokens).
fn store(store: &AuthStore, lock: &WriteLock, file: AuthFile) -> NewView {
    match store.write(lock, &file) {
        Ok(stamp) => NewView::Loaded(Loaded {
            stamp: Some(stamp),
            stored: Stored::Present(Box::new(file)),
        }),
        Err(error) => {
            tracing::error!(%error, "cannot store the refresh outcome; this process keeps it in memory and stores it on a later request");
            NewView::Unsaved(Box::new(file))
        }
    }
}

/// Stores `unsaved`, a decision whose write failed, once the store may work again: under the
/// lock, and only if the store still holds the credentials it was decided from (`from`), or
/// `unsaved`'s own tokens. When another process has stored something else meanwhile, that is
/// returned to adopt (never overwritten). `None` when the store still fails: the decision
/// stays in memory, for the next try.
///
/// This is what keeps a rotated refresh token: the provider has already replaced the stored
/// one, so dropping the decision would lose the session.
pub(crate) async fn store_unsaved(
    store: &AuthStore,
    unsaved: &AuthFile,
    from: &AuthFile,
    lock_timeout: Duration,
) -> Option<Loaded> {
    let lock = store
        .lock_within(lock_timeout)
        .await
        .map_err(still_unsaved)
        .ok()?;
    let (unsaved, from) = (unsaved.clone(), from.clone());
    // A slow disk or keyring: off the runtime's thread, so that requests keep being answered.
    off_thread(store, move |store| {
        let loaded = store.load().map_err(still_unsaved).ok()?;
        match &loaded.stored {
            Stored::Present(file) if same_tokens(file, &from) || same_tokens(file, &unsaved) => {}
            _ => {
                tracing::info!(
                    "another process changed the credentials; adopting them instead of storing the refresh outcome kept in memory"
                );
                return Some(loaded);
            }
        }
        let stamp = store.write(&lock, &unsaved).map_err(still_unsaved).ok()?;
        tracing::info!("stored the refresh outcome kept in memory");
        Some(Loaded {
            stamp: Some(stamp),
            stored: Stored::Present(Box::new(unsaved)),
        })
    })
    .await
}

fn still_unsaved(error: crate::store::StoreError) {
    tracing::warn!(%error, "the refresh outcome kept in memory is still not stored; tried again on the next request");
}

#[cfg(test)]
mod tests {
    use super::super::document::stored_tokens;
    use super::*;
    use crate::provider::{MAX_EXPIRES_IN_SECS, TokenResponse};
    use crate::secret::Secret;
    use crate::store::format::{REFRESH_CAUSE_REJECTED, RefreshFailureRecord, StoredTokens};

    fn file(access: &str, refresh: Option<&str>) -> AuthFile {
        let tokens = StoredTokens {
            access_token: Secret::new(access),
            refresh_token: refresh.map(Secret::new),
            id_token: Some(Secret::new("id-old")),
            token_type: Some("Bearer".into()),
            scope: Some("a".into()),
            expires_at: Some(1),
            issued_at: Some(0),
            refresh_cause: Some(REFRESH_CAUSE_REJECTED.into()),
            extra: Default::default(),
        };
        let mut file = AuthFile::oauth(Some("https://i".into()), Some("c".into()), tokens);
        let tokens = file.tokens.as_mut().unwrap();
        tokens.extra.insert("x_token_field", &serde_json::json!(1));
        file.extra.insert("x_top", &serde_json::json!("kept"));
        file
    }

    fn response(expires_in: Option<i64>) -> TokenResponse {
        TokenResponse {
            access_token: Secret::new("at2"),
            refresh_token: None,
            id_token: None,
            token_type: None,
            scope: None,
            expires_in,
        }
    }

    #[test]
    fn a_refresh_keeps_what_did_not_come_back_and_clears_failure_and_backoff() {
        let mut base = file("at1", Some("rt1"));
        base.refresh_failure = Some(RefreshFailureRecord {
            reason: "invalid_grant".into(),
            message: "m".into(),
            at: "t".into(),
            refresh_token_sha256: "other".into(),
        });
        base.refresh_backoff = Some(RefreshBackoffRecord {
            refresh_token_sha256: Secret::new("rt1").fingerprint(),
            retry_at: 5,
            failures: 2,
            message: "m".into(),
            code: None,
        });
        let new = refreshed(base, response(Some(3600)), Cause::Stale, 1_000);
        let tokens = new.tokens.as_ref().unwrap();
        assert_eq!(tokens.access_token.expose(), "at2");
        assert_eq!(tokens.refresh_token.as_ref().unwrap().expose(), "rt1");
        assert_eq!(tokens.id_token.as_ref().unwrap().expose(), "id-old");
        assert_eq!(
            (tokens.expires_at, tokens.issued_at),
            (Some(4_600), Some(1_000))
        );
        assert_eq!(
            tokens.refresh_cause, None,
            "a poll's refresh is not a report's"
        );
        assert_eq!(tokens.extra.get("x_token_field"), Some("1"));
        assert_eq!(new.extra.get("x_top"), Some(r#""kept""#));
        assert!(new.refresh_failure.is_none() && new.refresh_backoff.is_none());
        assert_eq!(new.last_refresh.as_deref(), Some("1970-01-01T00:16:40Z"));
    }

    #[test]
    fn a_report_triggered_refresh_is_marked() {
        let new = refreshed(file("at1", Some("rt1")), response(None), Cause::Rejected, 7);
        let tokens = new.tokens.unwrap();
        assert_eq!(
            tokens.refresh_cause.as_deref(),
            Some(REFRESH_CAUSE_REJECTED)
        );
        assert_eq!((tokens.expires_at, tokens.issued_at), (None, Some(7)));
    }

    #[test]
    fn absurd_lifetimes_are_clamped_not_overflowed() {
        for expires_in in [i64::MAX, MAX_EXPIRES_IN_SECS + 1] {
            let tokens = stored_tokens(response(Some(expires_in)), i64::MAX - 10);
            assert_eq!(tokens.expires_at, Some(i64::MAX));
            let tokens = stored_tokens(response(Some(expires_in)), 1_000);
            assert_eq!(tokens.expires_at, Some(1_000 + MAX_EXPIRES_IN_SECS));
        }
    }

    /// The access and refresh token `store` holds; `None` when it holds no credentials.
    fn held(store: &AuthStore) -> Option<(String, Option<String>)> {
        match store.load().unwrap().stored {
            Stored::Present(file) => file.tokens.map(|t| {
                let refresh = t.refresh_token.map(|r| r.expose().to_owned());
                (t.access_token.expose().to_owned(), refresh)
            }),
            _ => None,
        }
    }

    #[tokio::test]
    async fn an_unsaved_outcome_is_stored_only_over_what_it_was_decided_from() {
        let limit = Duration::from_secs(1);
        let from = file("at1", Some("rt1"));
        let unsaved = refreshed(from.clone(), response(Some(60)), Cause::Stale, 7);
        let ours = Some(("at2".to_owned(), Some("rt1".to_owned())));
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::new(dir.path());
        let write = |file: &AuthFile| store.write(&store.lock().unwrap(), file).unwrap();

        // The store still holds what the refresh started from, or already holds its outcome.
        for already in [&from, &unsaved] {
            write(already);
            let loaded = store_unsaved(&store, &unsaved, &from, limit).await.unwrap();
            assert!(matches!(loaded.stored, Stored::Present(_)));
            assert_eq!(loaded.stamp, store.stamp().unwrap());
            assert_eq!(held(&store), ours);
        }

        // Another process stored other tokens, or signed out: that wins, and is adopted.
        let other = file("at-other", Some("rt-other"));
        write(&other);
        let loaded = store_unsaved(&store, &unsaved, &from, limit).await.unwrap();
        assert!(matches!(&loaded.stored, Stored::Present(f) if same_tokens(f, &other)));
        assert_eq!(held(&store).unwrap().0, "at-other");
        store.remove(&store.lock().unwrap()).unwrap();
        let loaded = store_unsaved(&store, &unsaved, &from, limit).await.unwrap();
        assert!(matches!(loaded.stored, Stored::Missing));
        assert_eq!(held(&store), None);

        // The store still fails (its lock is held elsewhere): kept for the next try.
        write(&from);
        let _held_elsewhere = store.lock().unwrap();
        assert!(
            store_unsaved(&store, &unsaved, &from, limit)
                .await
                .is_none()
        );
        assert_eq!(held(&store).unwrap().0, "at1");
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
