//! Keeping the device off the runtime's thread: [`off_runtime`], through which every call
//! that may wait on the disk or the keyring is made.

/// Runs `work` on tokio's blocking pool and waits for it there. Every call that may wait on
/// the device (a write and its fsyncs, a read of the store, a keyring call) goes through this:
/// the runtime's one thread answers every request, so a slow disk or keyring on it would make
/// every poll of the process wait.
pub(crate) async fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}
