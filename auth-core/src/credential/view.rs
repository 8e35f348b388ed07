//! The credential's view of its stored document: the [`View`] as this process last saw it, the
//! stamp it was read at, and the outcome kept in memory when a write failed (the view is then
//! newer than the store). [`ViewState`] owns them; a request brings them up to date with the
//! store (`sync`: one `stat`, a read only when the stamp changed) and `install` makes a read or
//! a write the current view and announces it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::Credential;
use crate::error::AuthError;
use crate::refresh;
use crate::status::Credentials;
use crate::store::format::AuthFile;
use crate::store::{FileStamp, Loaded, StorageKind, StoreError, Stored, off_runtime};

/// The document as this process last saw it.
#[derive(Debug, Clone)]
pub(super) enum View {
    Missing,
    Unreadable(String),
    Present(Arc<Credentials>),
}

impl View {
    fn from_stored(stored: Stored) -> Self {
        match stored {
            Stored::Missing => Self::Missing,
            Stored::Unreadable(reason) => Self::Unreadable(reason),
            Stored::Present(file) => Self::Present(Arc::new(Credentials::new(*file))),
        }
    }
}

/// The view, its stamp and its unsaved part, changed together under one lock.
#[derive(Default)]
pub(super) struct ViewState(Mutex<Seen>);

struct Seen {
    /// `None` until the first successful read.
    stamp: Option<Option<FileStamp>>,
    view: View,
    /// Set while the view is a refresh's outcome this process could not store (the write
    /// failed): what the store held when it was decided. Stored by a later request
    /// (`store_unsaved_in_background`), or dropped when another process changes the store.
    unsaved: Option<Arc<AuthFile>>,
    /// When the latest `stat` that found the store at `stamp` was made: the view was current
    /// then (or newer: this process's own writes are installed at once).
    confirmed: Option<Instant>,
}

impl Default for Seen {
    fn default() -> Self {
        Self {
            stamp: None,
            view: View::Missing,
            unsaved: None,
            confirmed: None,
        }
    }
}

/// The stamp last seen, when the store's is another: what `ViewState::after_read` compares
/// with.
pub(super) struct Changed(Option<Option<FileStamp>>);

impl ViewState {
    pub(super) fn current(&self) -> View {
        self.lock().view.clone()
    }

    /// The view when a `stat` made at `checked` found the store at `stamp` and the view was
    /// read at it; else the store changed since.
    pub(super) fn unchanged_at(
        &self,
        stamp: Option<FileStamp>,
        checked: Instant,
    ) -> Result<View, Changed> {
        let mut seen = self.lock();
        if seen.stamp == Some(stamp) {
            seen.confirmed = seen.confirmed.max(Some(checked));
            return Ok(seen.view.clone());
        }
        Err(Changed(seen.stamp))
    }

    /// The view, if a `stat` made after `received` confirmed it: current enough for a request
    /// that had arrived by `received`.
    pub(super) fn confirmed_after(&self, received: Instant) -> Option<View> {
        let seen = self.lock();
        seen.confirmed
            .is_some_and(|confirmed| confirmed > received)
            .then(|| seen.view.clone())
    }

    /// After a read that `changed` asked for: the view to keep instead of installing `loaded`,
    /// if any.
    pub(super) fn after_read(&self, changed: Changed, loaded: &Loaded) -> Option<View> {
        let mut seen = self.lock();
        // Another request installed a view while this one read (a write of this process, or
        // a read of its own): that one is as new, or newer.
        if seen.stamp != changed.0 {
            return Some(seen.view.clone());
        }
        // Still what the unsaved view was decided from (another process recorded something
        // about those tokens): the unsaved view stays, to be stored over it.
        if let (Some(from), Stored::Present(file)) = (&seen.unsaved, &loaded.stored)
            && refresh::same_tokens(file, from)
        {
            seen.stamp = Some(loaded.stamp);
            return Some(seen.view.clone());
        }
        None
    }

    /// Makes `loaded` the view, which is then what the store holds (nothing unsaved).
    pub(super) fn install(&self, loaded: Loaded) -> View {
        let view = View::from_stored(loaded.stored);
        let mut seen = self.lock();
        seen.stamp = Some(loaded.stamp);
        seen.view = view.clone();
        seen.unsaved = None;
        view
    }

    /// Makes `file`, which could not be stored, the view. The store still holds `stored`,
    /// unless an earlier view was itself unsaved (then the store holds what that one was
    /// decided from).
    pub(super) fn keep_unsaved(&self, file: AuthFile, stored: &AuthFile) -> View {
        let view = View::Present(Arc::new(Credentials::new(file)));
        let mut seen = self.lock();
        seen.view = view.clone();
        seen.unsaved.get_or_insert_with(|| Arc::new(stored.clone()));
        view
    }

    /// What the store held when the unsaved view was decided, if there is one.
    pub(super) fn unsaved_from(&self) -> Option<Arc<AuthFile>> {
        self.lock().unsaved.clone()
    }

    pub(super) fn has_unsaved(&self) -> bool {
        self.lock().unsaved.is_some()
    }

    /// The unsaved view and what the store held when it was decided, if there is one.
    pub(super) fn unsaved(&self) -> Option<(Arc<Credentials>, Arc<AuthFile>)> {
        match &*self.lock() {
            Seen {
                view: View::Present(credentials),
                unsaved: Some(from),
                ..
            } => Some((credentials.clone(), from.clone())),
            _ => None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Seen> {
        // The state stays consistent even if a holder panicked: every update is one assignment.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Credential {
    pub(super) fn unreadable_error(&self, reason: String) -> AuthError {
        AuthError::Unreadable {
            path: self.store.location().into(),
            reason,
            keyring: self.store.kind() == StorageKind::Keyring,
        }
    }

    fn unreadable(&self, error: StoreError) -> AuthError {
        if error.keyring {
            return AuthError::StorageUnavailable(error);
        }
        self.unreadable_error(error.source.to_string())
    }

    /// Brings the view up to date with the file: one `stat`, and a read only when it changed
    /// (on a blocking thread: a slow disk or keyring holds up this request, not the others).
    pub(super) async fn sync(&self) -> Result<View, AuthError> {
        self.sync_received(None).await
    }

    /// [`Self::sync`] for a request that had arrived by `received`: no `stat` when one made
    /// after that already confirmed the view (a change made before it was seen by that `stat`;
    /// one made after it is after the request, which may be answered either way).
    pub(super) async fn sync_received(&self, received: Option<Instant>) -> Result<View, AuthError> {
        if let Some(view) = received.and_then(|received| self.view.confirmed_after(received)) {
            return Ok(view);
        }
        let checked = Instant::now();
        let stamp = self.store.stamp().map_err(|e| self.unreadable(e))?;
        let changed = match self.view.unchanged_at(stamp, checked) {
            Ok(view) => return Ok(view),
            Err(changed) => changed,
        };
        let store = self.store.clone();
        // Boxed, like the refresh of `status`: only a poll that finds the file changed reads it.
        let loaded = Box::pin(off_runtime(move || store.load()))
            .await
            .map_err(|e| self.unreadable(e))?;
        tracing::debug!("auth.json changed on disk; reloaded");
        if let Some(view) = self.view.after_read(changed, &loaded) {
            return Ok(view);
        }
        Ok(self.install(loaded, false))
    }

    /// Makes `loaded` the current view and announces the (method, state) it leads to: always
    /// when `force` (login, logout), else only when it changed.
    pub(super) fn install(&self, loaded: Loaded, force: bool) -> View {
        let view = self.view.install(loaded);
        self.flight.end_unsaved_pause();
        self.announce(&view, force);
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn present(file: AuthFile) -> Loaded {
        Loaded {
            stamp: None,
            stored: Stored::Present(Box::new(file)),
        }
    }

    fn key(value: &str) -> AuthFile {
        AuthFile::api_key(Secret::new(value))
    }

    #[test]
    fn a_stamp_seen_is_unchanged_and_another_is_not() {
        let state = ViewState::default();
        assert!(
            state.unchanged_at(None, Instant::now()).is_err(),
            "nothing read yet"
        );
        state.install(present(key("sk-one")));
        assert!(matches!(
            state.unchanged_at(None, Instant::now()),
            Ok(View::Present(_))
        ));
    }

    #[test]
    fn only_a_stat_made_after_a_request_arrived_confirms_the_view_for_it() {
        let state = ViewState::default();
        let before_any_stat = Instant::now();
        assert!(
            state.confirmed_after(before_any_stat).is_none(),
            "no stat yet"
        );
        state.install(present(key("sk-one")));
        let checked = Instant::now();
        // A stat that found another stamp confirms nothing.
        let other = FileStamp::for_tests(7);
        assert!(state.unchanged_at(Some(other), checked).is_err());
        assert!(state.confirmed_after(before_any_stat).is_none());
        // A stat that found the view's stamp confirms it for requests that had arrived before it.
        assert!(state.unchanged_at(None, checked).is_ok());
        assert!(matches!(
            state.confirmed_after(before_any_stat),
            Some(View::Present(_))
        ));
        let later = Instant::now();
        assert!(
            state.confirmed_after(later).is_none(),
            "arrived after the stat"
        );
    }

    #[test]
    fn an_install_drops_the_unsaved_view() {
        let state = ViewState::default();
        state.install(present(key("sk-one")));
        state.keep_unsaved(key("sk-two"), &key("sk-one"));
        assert!(state.has_unsaved());
        let (credentials, from) = state.unsaved().expect("an unsaved view");
        assert_eq!(credentials.file, key("sk-two"));
        assert_eq!(*from, key("sk-one"));
        // A second unsaved view keeps what the store holds.
        state.keep_unsaved(key("sk-three"), &key("sk-two"));
        assert_eq!(state.unsaved_from().as_deref(), Some(&key("sk-one")));
        state.install(present(key("sk-four")));
        assert!(!state.has_unsaved());
        assert!(state.unsaved().is_none());
    }

    #[test]
    fn a_read_overtaken_by_an_install_keeps_the_installed_view() {
        let state = ViewState::default();
        let changed = state
            .unchanged_at(None, Instant::now())
            .expect_err("nothing read yet");
        state.install(present(key("sk-new")));
        let kept = state.after_read(changed, &present(key("sk-old")));
        assert!(matches!(kept, Some(View::Present(c)) if c.file == key("sk-new")));
    }
}
