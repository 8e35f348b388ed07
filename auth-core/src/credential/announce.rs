//! What the credential tells clients without being asked: [`AuthEvent`]s through the
//! [`EventSink`]. [`Announcer`] owns the last (method, state) clients were told about (or found
//! at start), so that `authStatusChanged` is sent when it changes and only then, or always
//! after a sign-in or sign-out.

use std::sync::{Arc, Mutex, MutexGuard};

use super::Credential;
use super::view::View;
use crate::status::{AuthMethod, AuthState};

/// Something clients should hear about, without being asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEvent {
    StatusChanged {
        method: Option<AuthMethod>,
        state: AuthState,
    },
    LoginCompleted {
        login_id: String,
        success: bool,
        error: Option<String>,
    },
}

/// Receives events synchronously, in the order they happen (before the answer of the request
/// that caused them).
pub type EventSink = Arc<dyn Fn(AuthEvent) + Send + Sync>;

/// A (method, state) as announced.
type Summary = (Option<AuthMethod>, AuthState);

/// The sink and the last (method, state) sent to it.
pub(super) struct Announcer {
    events: EventSink,
    announced: Mutex<Option<Summary>>,
}

impl Announcer {
    pub(super) fn new(events: EventSink) -> Self {
        Self {
            events,
            announced: Mutex::new(None),
        }
    }

    /// What was found at start: the baseline, not announced.
    pub(super) fn start_from(&self, found: Option<Summary>) {
        *self.announced() = found;
    }

    /// Announces (method, state) when it differs from what clients were last told, or
    /// always when `force`.
    pub(super) fn announce(&self, method: Option<AuthMethod>, state: AuthState, force: bool) {
        let mut announced = self.announced();
        if force || *announced != Some((method, state)) {
            *announced = Some((method, state));
            drop(announced);
            (self.events)(AuthEvent::StatusChanged { method, state });
        }
    }

    /// Tells clients how login `login_id` ended.
    pub(super) fn login_completed(&self, login_id: &str, result: Result<(), String>) {
        let (success, error) = match result {
            Ok(()) => (true, None),
            Err(error) => (false, Some(error)),
        };
        (self.events)(AuthEvent::LoginCompleted {
            login_id: login_id.to_owned(),
            success,
            error,
        });
    }

    fn announced(&self) -> MutexGuard<'_, Option<Summary>> {
        self.announced.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Credential {
    /// Announces the current view's (method, state) if it changed (e.g. after a transient
    /// failure this process could not record, which changes the state but not the file).
    pub(super) fn announce_current(&self) {
        let view = self.view.current();
        self.announce(&view, false);
    }

    /// Announces the (method, state) of `view`: always when `force`, else only when it
    /// changed. An unreadable file announces nothing.
    pub(super) fn announce(&self, view: &View, force: bool) {
        let Some((method, state)) = self.summary(view) else {
            return;
        };
        self.announcer.announce(method, state, force);
    }

    /// (method, state) of a view; `None` for an unreadable file (nothing to announce).
    pub(super) fn summary(&self, view: &View) -> Option<Summary> {
        match view {
            View::Missing => Some((None, AuthState::SignedOut)),
            View::Unreadable(_) => None,
            View::Present(credentials) => {
                let report = self.describe(credentials, false);
                Some((report.method, report.state))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording() -> (Announcer, Arc<Mutex<Vec<AuthEvent>>>) {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let sink = heard.clone();
        let announcer = Announcer::new(Arc::new(move |event| sink.lock().unwrap().push(event)));
        (announcer, heard)
    }

    fn changed(method: Option<AuthMethod>, state: AuthState) -> AuthEvent {
        AuthEvent::StatusChanged { method, state }
    }

    #[test]
    fn announces_only_a_change_from_what_was_found_or_told() {
        let (announcer, heard) = recording();
        announcer.start_from(Some((None, AuthState::SignedOut)));
        announcer.announce(None, AuthState::SignedOut, false);
        let key = Some(AuthMethod::ApiKey);
        announcer.announce(key, AuthState::Active, false);
        announcer.announce(key, AuthState::Active, false);
        assert_eq!(*heard.lock().unwrap(), [changed(key, AuthState::Active)]);
    }

    #[test]
    fn a_forced_announcement_is_sent_even_without_a_change() {
        let (announcer, heard) = recording();
        announcer.start_from(None);
        announcer.announce(None, AuthState::SignedOut, false);
        announcer.announce(None, AuthState::SignedOut, true);
        announcer.announce(None, AuthState::SignedOut, false);
        let signed_out = changed(None, AuthState::SignedOut);
        assert_eq!(*heard.lock().unwrap(), [signed_out.clone(), signed_out]);
    }

    #[test]
    fn a_login_ends_with_one_event_saying_how() {
        let (announcer, heard) = recording();
        announcer.login_completed("login-1", Ok(()));
        announcer.login_completed("login-2", Err("denied".into()));
        let ended = |id: &str, error: Option<&str>| AuthEvent::LoginCompleted {
            login_id: id.into(),
            success: error.is_none(),
            error: error.map(str::to_owned),
        };
        assert_eq!(
            *heard.lock().unwrap(),
            [ended("login-1", None), ended("login-2", Some("denied"))]
        );
    }
}
