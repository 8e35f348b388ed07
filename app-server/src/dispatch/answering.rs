//! One call of the dispatcher being answered ([`Answering`]): the method's callback on the
//! `RpcModule`, polled until its answer line is ready, with the moment its request arrived at
//! hand while it runs ([`received`]); a panicking handler is answered with an internal error.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use auth_protocol::error_code;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, CatchUnwind};
use jsonrpsee::types::{Id, Params};
use jsonrpsee::{ConnectionId, Extensions, MethodCallback, MethodResponse};
use serde_json::value::RawValue;

use crate::envelope;

thread_local! {
    /// When the request of the call being polled on this thread had arrived, while it is
    /// polled.
    static POLLED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// When the read that brought the line of the request whose method is running on this thread
/// ended (every byte of the request had arrived by then); `None` outside the poll of a call.
/// `getAuthStatus` answers from a view confirmed after it without another `stat`.
///
/// The method callbacks run when their call is first polled (the `RpcModule`'s async methods
/// call them inside the future they return), so they read it there. It is not carried in the
/// call's `Extensions`: a value in them is a map allocated, cloned and freed per request, 7% of
/// a poll's instructions.
pub fn received() -> Option<Instant> {
    POLLED.get()
}

/// One call being answered: its answer line, or `None` for a notification. A panicking handler
/// is answered with an internal error instead of never. `Unpin`, so that it can be polled where
/// it was admitted and moved into a task when it is not done.
pub(super) struct Answering {
    /// The request's id, verbatim; `None` for a notification.
    id: Option<Box<RawValue>>,
    /// `None` when the method panicked as it was called.
    response: Option<CatchUnwind<AssertUnwindSafe<BoxFuture<'static, MethodResponse>>>>,
    received: Instant,
}

impl Answering {
    pub(super) fn start(
        id: Option<Box<RawValue>>,
        callback: MethodCallback,
        params: Params<'static>,
        received: Instant,
    ) -> Self {
        let extensions = Extensions::new();
        let call = || -> BoxFuture<'static, MethodResponse> {
            match callback {
                MethodCallback::Async(method) => {
                    method(Id::Null, params, ConnectionId(0), usize::MAX, extensions)
                }
                MethodCallback::Sync(method) => Box::pin(std::future::ready(method(
                    Id::Null,
                    params,
                    usize::MAX,
                    extensions,
                ))),
                MethodCallback::Subscription(_) | MethodCallback::Unsubscription(_) => {
                    Box::pin(std::future::ready(MethodResponse::error(
                        Id::Null,
                        jsonrpsee::types::ErrorCode::MethodNotFound,
                    )))
                }
            }
        };
        let response = std::panic::catch_unwind(AssertUnwindSafe(call))
            .ok()
            .map(|response| AssertUnwindSafe(response).catch_unwind());
        Self {
            id,
            response,
            received,
        }
    }
}

impl Future for Answering {
    type Output = Option<String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let this = &mut *self;
        let response = match this.response.as_mut() {
            Some(response) => {
                POLLED.set(Some(this.received));
                let polled = Pin::new(response).poll(cx);
                POLLED.set(None);
                match polled {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(response) => response.ok(),
                }
            }
            None => None,
        };
        this.response = None;
        let id = this.id.as_deref();
        Poll::Ready(match response {
            Some(response) => id.map(|id| envelope::answer(id, &response)),
            None => {
                tracing::error!("a method handler panicked");
                let message = "internal error: the request failed unexpectedly; the server keeps serving, retry it";
                id.map(|id| envelope::error(Some(id), error_code::INTERNAL_ERROR, message))
            }
        })
    }
}
