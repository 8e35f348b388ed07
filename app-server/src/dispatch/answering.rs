//! One call of the dispatcher being answered ([`Answering`]): the method's callback on the
//! `RpcModule`, called with the request's [`Received`] moment in its extensions, polled until
//! its answer line is ready; a panicking handler is answered with an internal error.

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

/// When the read that brought a request's line from stdin ended: every byte of the request had
/// arrived by then. Handlers find it in the call's extensions (`getAuthStatus` answers from a
/// view confirmed after it without another `stat`).
#[derive(Debug, Clone, Copy)]
pub struct Received(pub Instant);

/// One call being answered: its answer line, or `None` for a notification. A panicking handler
/// is answered with an internal error instead of never. `Unpin`, so that it can be polled where
/// it was admitted and moved into a task when it is not done.
pub(super) struct Answering {
    /// The request's id, verbatim; `None` for a notification.
    id: Option<Box<RawValue>>,
    /// `None` when the method panicked as it was called.
    response: Option<CatchUnwind<AssertUnwindSafe<BoxFuture<'static, MethodResponse>>>>,
}

impl Answering {
    pub(super) fn start(
        id: Option<Box<RawValue>>,
        callback: MethodCallback,
        params: Params<'static>,
        received: Instant,
    ) -> Self {
        let mut extensions = Extensions::new();
        extensions.insert(Received(received));
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
        Self { id, response }
    }
}

impl Future for Answering {
    type Output = Option<String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let this = &mut *self;
        let response = match this.response.as_mut() {
            Some(response) => match Pin::new(response).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(response) => response.ok(),
            },
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
