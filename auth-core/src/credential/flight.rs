//! The credential's single-flight refresh and what a failed write left behind. [`Flight`] owns
//! the refresh running in this process (callers join it: one lock wait and one HTTP request
//! for all), the transient failure this process could not record in the store, and the pacing
//! of the background task that stores a view whose write failed. `apply` installs what a
//! refresh left; `store_unsaved_in_background` stores an unsaved view later.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::Credential;
use crate::policy::Backoff;
use crate::refresh::{self, Cause, Finished, Job, NewView, RefreshOutcome};
use crate::status::Credentials;

/// The outcome of the refresh in flight, once it ends (`None` until then).
pub(super) type RefreshWatch = watch::Receiver<Option<RefreshOutcome>>;

/// The pause after a failed try at storing a refresh's outcome kept in memory.
const UNSAVED_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The refresh in flight and what failed writes left, under one lock held only for an update.
#[derive(Default)]
pub(super) struct Flight(Mutex<FlightState>);

#[derive(Default)]
struct FlightState {
    /// The refresh running in this process, if any.
    in_flight: Option<RefreshWatch>,
    /// A transient failure this process could not record in the file.
    unrecorded: Option<Backoff>,
    /// A task storing the unsaved view is under way.
    storing_unsaved: bool,
    /// After a try at storing the unsaved view failed: no new try before this instant, so a
    /// store that keeps failing is not tried (and the cross-process lock not taken) on every
    /// request.
    unsaved_retry_at: Option<Instant>,
}

/// What a caller that wants a refresh does.
pub(super) enum Turn {
    /// A refresh is running: wait for its outcome.
    Join(RefreshWatch),
    /// None is: this caller runs one, then [`Flight::land`]s it with `done`.
    Lead {
        done: watch::Sender<Option<RefreshOutcome>>,
        watch: RefreshWatch,
        /// This process's own unrecorded backoff, for the refresh to count failures.
        unrecorded: Option<Backoff>,
    },
}

impl Flight {
    /// Joins the refresh in flight, or takes the lead of a new one.
    pub(super) fn join_or_lead(&self) -> Turn {
        let mut state = self.lock();
        // A task that ended without an answer (it panicked) must not block refreshes forever.
        if let Some(running) = state.in_flight.as_ref().filter(|w| w.has_changed().is_ok()) {
            return Turn::Join(running.clone());
        }
        let (done, watch) = watch::channel(None);
        state.in_flight = Some(watch.clone());
        Turn::Lead {
            done,
            watch,
            unrecorded: state.unrecorded.clone(),
        }
    }

    /// Ends the refresh in flight and hands its outcome to those who joined it.
    pub(super) fn land(
        &self,
        done: watch::Sender<Option<RefreshOutcome>>,
        outcome: RefreshOutcome,
    ) {
        self.lock().in_flight = None;
        let _ = done.send(Some(outcome));
    }

    /// Whether a refresh is in flight.
    pub(super) fn is_running(&self) -> bool {
        self.lock().in_flight.is_some()
    }

    /// The transient failure this process could not record, if any.
    pub(super) fn unrecorded(&self) -> Option<Backoff> {
        self.lock().unrecorded.clone()
    }

    /// Keeps what a refresh could not record; a successful refresh ends the last one.
    pub(super) fn keep_unrecorded(&self, unrecorded: Option<Backoff>, refreshed: bool) {
        let mut state = self.lock();
        match unrecorded {
            Some(backoff) => state.unrecorded = Some(backoff),
            None if refreshed => state.unrecorded = None,
            None => {}
        }
    }

    /// Forgets the unrecorded failure (new credentials were stored, or none).
    pub(super) fn forget_unrecorded(&self) {
        self.lock().unrecorded = None;
    }

    /// Marks a store of the unsaved view as under way; false when one is, or when the pause
    /// after a failed one has not ended.
    pub(super) fn begin_storing_unsaved(&self) -> bool {
        let mut state = self.lock();
        let waiting = state.unsaved_retry_at.is_some_and(|at| Instant::now() < at);
        if state.storing_unsaved || waiting {
            return false;
        }
        state.storing_unsaved = true;
        true
    }

    pub(super) fn end_storing_unsaved(&self) {
        self.lock().storing_unsaved = false;
    }

    /// After a failed store of the unsaved view: no new try for a while.
    pub(super) fn pause_unsaved(&self) {
        self.lock().unsaved_retry_at = Some(Instant::now() + UNSAVED_RETRY_PAUSE);
    }

    /// Allows a store of the unsaved view at once.
    pub(super) fn end_unsaved_pause(&self) {
        self.lock().unsaved_retry_at = None;
    }

    fn lock(&self) -> MutexGuard<'_, FlightState> {
        // The state stays consistent even if a holder panicked: every update is one assignment.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Credential {
    /// The refresh in flight, or a new one. Concurrent callers share one task, so one lock
    /// wait and one HTTP request.
    pub(super) fn start_or_join_refresh(
        self: &Arc<Self>,
        credentials: &Arc<Credentials>,
        cause: Cause,
    ) -> RefreshWatch {
        let (done, watch, unrecorded) = match self.flight.join_or_lead() {
            Turn::Join(running) => return running,
            Turn::Lead {
                done,
                watch,
                unrecorded,
            } => (done, watch, unrecorded),
        };
        let job = Job {
            store: self.store.clone(),
            client: self
                .client_for(credentials)
                .expect("the policy refreshes only with a provider"),
            snapshot: credentials.clone(),
            cause,
            lock_timeout: self.limits.lock_timeout,
            unrecorded,
            unsaved_from: self.view.unsaved_from(),
        };
        let credential = self.clone();
        let snapshot = credentials.clone();
        let task = tokio::spawn(async move {
            let outcome = {
                let _turn = credential.write_gate.lock().await;
                let finished = refresh::run(job).await;
                credential.apply(finished, &snapshot)
            };
            credential.flight.land(done, outcome);
        });
        self.keep_in_background(task);
        watch
    }

    /// Records that `credentials`' rejected access token is dead (no refresh token), in turn
    /// with refreshes and other writes, then installs and announces it as a refresh's outcome.
    pub(super) async fn poison_dead_token(&self, credentials: &Credentials) -> RefreshOutcome {
        let _turn = self.write_gate.lock().await;
        let unsaved_from = self.view.unsaved_from();
        let finished = refresh::poison_dead_token(
            &self.store,
            credentials,
            unsaved_from.as_deref(),
            self.limits.lock_timeout,
        )
        .await;
        self.apply(finished, credentials)
    }

    /// Installs what a refresh of `snapshot` left and announces the new state. Called with the
    /// write gate held, so that no store of an unsaved view runs in between.
    fn apply(&self, finished: Finished, snapshot: &Credentials) -> RefreshOutcome {
        match finished.view {
            Some(NewView::Loaded(loaded)) => {
                self.install(loaded, false);
            }
            Some(NewView::Unsaved(file)) => {
                let view = self.view.keep_unsaved(*file, &snapshot.file);
                self.announce(&view, false);
            }
            None => {}
        }
        self.flight.keep_unrecorded(
            finished.unrecorded,
            matches!(finished.outcome, RefreshOutcome::Refreshed),
        );
        self.announce_current();
        finished.outcome
    }

    /// Starts storing the view this process could not store (a refresh's outcome whose write
    /// failed), unless there is none or that is under way. In the background: no request
    /// waits for a store that may still not answer (a keyring bounds each call to 2 s).
    pub(super) fn store_unsaved_in_background(self: &Arc<Self>) {
        if !self.view.has_unsaved() || !self.flight.begin_storing_unsaved() {
            return;
        }
        let credential = self.clone();
        let task = tokio::spawn(async move {
            let _storing = StoringUnsaved(&credential);
            let _turn = credential.write_gate.lock().await;
            // What is unsaved now: a refresh may have stored (or replaced) it meanwhile.
            let Some((credentials, from)) = credential.view.unsaved() else {
                return;
            };
            let stored = refresh::store_unsaved(
                &credential.store,
                &credentials.file,
                &from,
                credential.limits.lock_timeout,
            )
            .await;
            match stored {
                Some(loaded) => {
                    credential.install(loaded, false);
                }
                None => credential.flight.pause_unsaved(),
            }
        });
        self.keep_in_background(task);
    }
}

/// Marks the end of a task storing the unsaved view, however it ends.
struct StoringUnsaved<'a>(&'a Credential);

impl Drop for StoringUnsaved<'_> {
    fn drop(&mut self) {
        self.0.flight.end_storing_unsaved();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(flight: &Flight) -> (watch::Sender<Option<RefreshOutcome>>, RefreshWatch) {
        match flight.join_or_lead() {
            Turn::Lead { done, watch, .. } => (done, watch),
            Turn::Join(_) => panic!("joined with nothing in flight"),
        }
    }

    #[test]
    fn callers_join_the_refresh_in_flight_until_it_lands() {
        let flight = Flight::default();
        assert!(!flight.is_running());
        let (done, mut leader) = lead(&flight);
        assert!(flight.is_running());
        let Turn::Join(mut joined) = flight.join_or_lead() else {
            panic!("a second refresh started while one was in flight");
        };
        flight.land(done, RefreshOutcome::Refreshed);
        assert!(!flight.is_running());
        for watch in [&mut leader, &mut joined] {
            assert_eq!(*watch.borrow_and_update(), Some(RefreshOutcome::Refreshed));
        }
        // The next caller starts a new one.
        lead(&flight);
    }

    #[test]
    fn a_refresh_that_ended_without_an_answer_does_not_block_the_next() {
        let flight = Flight::default();
        let (done, _watch) = lead(&flight);
        drop(done);
        lead(&flight);
    }

    #[test]
    fn one_store_of_the_unsaved_view_at_a_time_and_none_during_the_pause() {
        let flight = Flight::default();
        assert!(flight.begin_storing_unsaved());
        assert!(!flight.begin_storing_unsaved());
        flight.end_storing_unsaved();
        flight.pause_unsaved();
        assert!(!flight.begin_storing_unsaved());
        flight.end_unsaved_pause();
        assert!(flight.begin_storing_unsaved());
    }

    #[test]
    fn a_success_ends_the_unrecorded_failure_and_other_outcomes_keep_it() {
        let backoff = Backoff {
            fingerprint: "fp".into(),
            retry_at_ms: 1,
            failures: 1,
            code: None,
            message: "down".into(),
        };
        let flight = Flight::default();
        flight.keep_unrecorded(Some(backoff.clone()), false);
        flight.keep_unrecorded(None, false);
        assert_eq!(flight.unrecorded(), Some(backoff));
        flight.keep_unrecorded(None, true);
        assert_eq!(flight.unrecorded(), None);
    }
}
