//! JSON-RPC dispatch: turns one stdin line into calls on the `RpcModule`'s methods and answer
//! lines for the writer (written by [`envelope`]).
//!
//! The reader calls [`Dispatcher::handle_line`] for each line, in order. Everything that must
//! follow the order of lines (the `initialize` handshake, the in-flight bound) is decided there,
//! synchronously; the method calls themselves run concurrently, each starting in line order. A
//! call is polled once where it is admitted: most (a poll answered from memory) are done then
//! and answered without a task of their own; one that must wait goes on in its own task.
//! Each call is an [`answering::Answering`]; its method finds when its line arrived with
//! [`received`].

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Instant;

use auth_protocol::error_code;
use jsonrpsee::types::Params;
use jsonrpsee::{MethodCallback, Methods};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::envelope;
use crate::methods::initialize::{Gate, Handshake};

mod answering;

use crate::transport::{Outgoing, OutgoingSender, Permits};
use answering::Answering;
pub use answering::received;

/// Requests being handled or answered but not yet written; past this, `-32001`.
pub const MAX_IN_FLIGHT: usize = 1024;

/// The most elements one batch may have; a larger one is answered with one `-32600` naming
/// the limit (as geth and others do), whatever its elements hold.
pub const MAX_BATCH: usize = 1024;

/// The most bytes of the dispatcher's own answers (error lines) that may wait unwritten: a
/// client that sends invalid requests or batches and does not read makes the server hold no
/// more than this (plus one line), however long the ids it makes the server echo.
pub const MAX_OWN_LINE_BYTES: usize = 4 * 1024 * 1024;

/// The members of a request this server reads. Every member is kept raw so that a wrong type
/// is told apart from broken JSON.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    jsonrpc: Option<&'a RawValue>,
    /// `Some` whenever the member is present, even as `null` (a request, not a notification).
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    method: Option<&'a RawValue>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// A request admitted for execution.
struct Call {
    /// The request's id, verbatim; `None` for a notification.
    id: Option<Box<RawValue>>,
    callback: MethodCallback,
    params: Params<'static>,
    permit: Option<OwnedSemaphorePermit>,
}

enum Admission {
    Call(Call),
    /// Answered without running anything (an error line).
    Reply(String),
    /// A notification that needs nothing.
    Nothing,
}

pub struct Dispatcher {
    methods: Methods,
    handshake: Handshake,
    in_flight: Arc<Semaphore>,
    /// Bounds the dispatcher's own error lines while stdout is not being read: their count...
    own_lines: Arc<Semaphore>,
    /// ...and their bytes.
    own_bytes: Arc<Semaphore>,
    /// Batches whose calls have not all had their first turn yet.
    batches_queued: Arc<AtomicUsize>,
    out: OutgoingSender,
}

impl Dispatcher {
    pub fn new(methods: Methods, out: OutgoingSender) -> Arc<Self> {
        Arc::new(Self {
            methods,
            handshake: Handshake::default(),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            own_lines: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            own_bytes: Arc::new(Semaphore::new(MAX_OWN_LINE_BYTES)),
            batches_queued: Arc::new(AtomicUsize::new(0)),
            out,
        })
    }

    /// Handles one line of input, read from stdin by the read that ended at `received` (every
    /// byte of the line had arrived by then). Returns once the line's order-sensitive decisions
    /// are made; its calls go on in their own tasks.
    pub async fn handle_line(self: &Arc<Self>, line: &[u8], received: Instant) {
        let Ok(text) = std::str::from_utf8(line) else {
            return self
                .reply(envelope::error(
                    None,
                    error_code::PARSE_ERROR,
                    "parse error: the line is not valid UTF-8",
                ))
                .await;
        };
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        if text.starts_with('[') {
            return self.handle_batch(text, received).await;
        }
        match self.admit(text) {
            Admission::Call(call) => {
                let permits = Permits::from(call.permit);
                // Calls start in line order: while a batch's calls wait for their first turn
                // in the runtime's queue, this one queues behind them.
                if self.batches_queued.load(Ordering::Acquire) > 0 {
                    let out = self.out.clone();
                    tokio::spawn(async move {
                        let answer =
                            Answering::start(call.id, call.callback, call.params, received);
                        if let Some(text) = answer.await {
                            out.send(Outgoing::Line { text, permits });
                        }
                    });
                    return;
                }
                let mut answer = Answering::start(call.id, call.callback, call.params, received);
                let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut answer).poll(cx)));
                match first.await {
                    Poll::Ready(text) => self.answered(text, permits),
                    Poll::Pending => {
                        let out = self.out.clone();
                        tokio::spawn(async move {
                            if let Some(text) = answer.await {
                                out.send(Outgoing::Line { text, permits });
                            }
                        });
                    }
                }
            }
            Admission::Reply(line) => self.reply(line).await,
            Admission::Nothing => {}
        }
    }

    /// Hands a call's answer to the output (nothing for a notification): written at once, on
    /// the reader's thread, when nothing waits before it.
    fn answered(&self, text: Option<String>, permits: Permits) {
        if let Some(text) = text {
            self.out.send_now(text, permits);
        }
    }

    /// Answers a line longer than the limit.
    pub async fn line_too_long(&self, limit: usize) {
        let message = format!(
            "invalid request: the line is longer than {limit} bytes and was skipped; send smaller messages"
        );
        self.reply(envelope::error(None, error_code::INVALID_REQUEST, &message))
            .await;
    }

    /// Waits until every admitted request has been answered and written, then flushes stdout.
    pub async fn drain(&self) {
        let _calls = self.in_flight.acquire_many(MAX_IN_FLIGHT as u32).await;
        let _lines = self.own_lines.acquire_many(MAX_IN_FLIGHT as u32).await;
        let _bytes = self.own_bytes.acquire_many(MAX_OWN_LINE_BYTES as u32).await;
        let (ack, flushed) = oneshot::channel();
        self.out.send(Outgoing::Flush(ack));
        let _ = flushed.await;
    }

    /// A batch has at most [`MAX_BATCH`] elements (counted before anything is kept, so a huge
    /// one costs nothing but its one error line), and counts toward the bounds element by
    /// element, like as many single lines: each call holds an in-flight permit (past the bound
    /// it is answered `-32001`), and each answer the dispatcher gives itself waits for its
    /// own-line permits (one, and its bytes). Every permit is held until the batch's answer is
    /// written, so a client that sends large batches and does not read cannot make the server
    /// buffer without limit.
    async fn handle_batch(self: &Arc<Self>, text: &str, received: Instant) {
        let invalid = |message: &str| envelope::error(None, error_code::INVALID_REQUEST, message);
        match serde_json::from_str::<BatchLength>(text) {
            Err(error) => return self.reply(decode_error_line(&error)).await,
            Ok(BatchLength(0)) => {
                let message = "invalid request: the batch is empty; send at least one request";
                return self.reply(invalid(message)).await;
            }
            Ok(BatchLength(n)) if n > MAX_BATCH => {
                let message = format!(
                    "invalid request: the batch has {n} elements, more than the limit of {MAX_BATCH}; send it in smaller batches"
                );
                return self.reply(invalid(&message)).await;
            }
            Ok(_) => {}
        }
        let items: Vec<&RawValue> = match serde_json::from_str(text) {
            Ok(items) => items,
            Err(error) => return self.reply(decode_error_line(&error)).await,
        };
        let mut replies = Vec::new();
        let mut calls = tokio::task::JoinSet::new();
        let mut calls_held: Option<OwnedSemaphorePermit> = None;
        let mut lines_held: Option<OwnedSemaphorePermit> = None;
        let mut bytes_held: Option<OwnedSemaphorePermit> = None;
        let mut bytes_counted = 0;
        for item in items {
            match self.admit(item.get()) {
                Admission::Call(call) => {
                    hold(&mut calls_held, call.permit);
                    calls.spawn(Answering::start(
                        call.id,
                        call.callback,
                        call.params,
                        received,
                    ));
                }
                Admission::Reply(line) => {
                    // Never more bytes than the whole bound: the batch would wait on itself.
                    // The bytes past it ride along; the line limit bounds how many there are.
                    let bytes = line.len().min(MAX_OWN_LINE_BYTES - bytes_counted);
                    hold(
                        &mut bytes_held,
                        self.own_bytes
                            .clone()
                            .acquire_many_owned(bytes as u32)
                            .await
                            .ok(),
                    );
                    bytes_counted += bytes;
                    hold(
                        &mut lines_held,
                        self.own_lines.clone().acquire_owned().await.ok(),
                    );
                    replies.push(line);
                }
                Admission::Nothing => {}
            }
        }
        if calls.is_empty() && replies.is_empty() {
            return;
        }
        let out = self.out.clone();
        // The runtime runs tasks in the order they were spawned: when this one starts, every
        // call of the batch has had its first turn.
        let queued = self.batches_queued.clone();
        queued.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            queued.fetch_sub(1, Ordering::AcqRel);
            while let Some(answer) = calls.join_next().await {
                if let Some(line) = answer.ok().flatten() {
                    replies.push(line);
                }
            }
            if !replies.is_empty() {
                let permits = Permits::new([calls_held, lines_held, bytes_held]);
                out.send(Outgoing::Line {
                    text: envelope::batch(&replies),
                    permits,
                });
            }
        });
    }

    /// Checks one request and decides, in line order, whether it runs.
    fn admit(&self, text: &str) -> Admission {
        let request: Envelope = match serde_json::from_str(text) {
            // serde also reads a struct from an array, by position; a request is an object.
            Ok(_) if !text.starts_with('{') => {
                return Admission::Reply(envelope::error(
                    None,
                    error_code::INVALID_REQUEST,
                    NOT_A_REQUEST,
                ));
            }
            Ok(request) => request,
            Err(error) => return Admission::Reply(decode_error_line(&error)),
        };
        let id = match request.id {
            Some(id) if !is_valid_id(id.get()) => {
                let message = "invalid request: \"id\" must be a string, a number or null";
                return Admission::Reply(envelope::error(
                    None,
                    error_code::INVALID_REQUEST,
                    message,
                ));
            }
            id => id,
        };
        let invalid = |message: &str| {
            Admission::Reply(envelope::error(id, error_code::INVALID_REQUEST, message))
        };
        if request.jsonrpc.is_some_and(|v| v.get() != "\"2.0\"") {
            return invalid("invalid request: \"jsonrpc\" must be \"2.0\" (or absent)");
        }
        let Some(name) = request
            .method
            .and_then(|m| serde_json::from_str::<std::borrow::Cow<str>>(m.get()).ok())
        else {
            return invalid("invalid request: \"method\" must be a string");
        };
        let params = match request.params.map(RawValue::get) {
            Some("null") | None => None,
            Some(p) if p.starts_with('{') || p.starts_with('[') => Some(p),
            Some(_) => return invalid("invalid request: \"params\" must be an object or an array"),
        };

        match self.handshake.admit(&name, id.is_some(), params) {
            Gate::Pass => {}
            Gate::Ignore => return Admission::Nothing,
            Gate::Refuse(error) => {
                return Admission::Reply(envelope::error(id, error.code(), error.message()));
            }
        }

        let permit = match (self.in_flight.clone().try_acquire_owned(), id) {
            (Ok(permit), _) => Some(permit),
            (Err(_), None) => return Admission::Nothing,
            (Err(_), Some(_)) => {
                return Admission::Reply(envelope::error(
                    id,
                    error_code::OVERLOADED,
                    "server overloaded; retry later",
                ));
            }
        };
        let Some(callback) = self.methods.method(&name).cloned() else {
            if id.is_none() {
                return Admission::Nothing;
            }
            let shown: String = name.chars().take(64).collect();
            let message =
                format!("unknown method `{shown}`; see protocol/README.md for the methods");
            return Admission::Reply(envelope::error(id, error_code::METHOD_NOT_FOUND, &message));
        };
        tracing::debug!(method = %name, notification = id.is_none(), "request");
        Admission::Call(Call {
            id: id.map(ToOwned::to_owned),
            callback,
            params: Params::new(params).into_owned(),
            permit,
        })
    }

    /// Queues one of the dispatcher's own answers, waiting while too many (or too many bytes)
    /// are unwritten.
    async fn reply(&self, text: String) {
        let bytes = text.len().min(MAX_OWN_LINE_BYTES) as u32;
        let bytes = self.own_bytes.clone().acquire_many_owned(bytes).await.ok();
        let line = self.own_lines.clone().acquire_owned().await.ok();
        let permits = Permits::new([line, bytes, None]);
        self.out.send_now(text, permits);
    }
}

/// The number of elements of a JSON array, counted without keeping any.
struct BatchLength(usize);

impl<'de> Deserialize<'de> for BatchLength {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Count;
        impl<'de> serde::de::Visitor<'de> for Count {
            type Value = BatchLength;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a batch array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<BatchLength, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(BatchLength(n))
            }
        }
        deserializer.deserialize_seq(Count)
    }
}

/// Adds `permit` to those a batch already holds from the same semaphore.
fn hold(held: &mut Option<OwnedSemaphorePermit>, permit: Option<OwnedSemaphorePermit>) {
    match (held.as_mut(), permit) {
        (Some(held), Some(permit)) => held.merge(permit),
        (None, permit) => *held = permit,
        (Some(_), None) => {}
    }
}

fn is_valid_id(id: &str) -> bool {
    id == "null"
        || id.starts_with('"')
        || id.starts_with('-')
        || id.starts_with(|c: char| c.is_ascii_digit())
}

const NOT_A_REQUEST: &str = "invalid request: expected a JSON-RPC request object with \"method\" (or a batch array of them)";

/// `-32700` for broken JSON, `-32600` for JSON that is not a request. Never quotes the input.
fn decode_error_line(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            let message = format!(
                "parse error: invalid JSON at line {} column {}",
                error.line(),
                error.column()
            );
            envelope::error(None, error_code::PARSE_ERROR, &message)
        }
        Category::Data => envelope::error(None, error_code::INVALID_REQUEST, NOT_A_REQUEST),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Receiver;

    /// A dispatcher over `module` whose `initialize` (its line arrived at `arrived`) has been
    /// answered, and the lines it writes next.
    async fn initialized<C: Send + Sync + 'static>(
        module: jsonrpsee::RpcModule<C>,
        arrived: Instant,
    ) -> (Arc<Dispatcher>, Receiver) {
        let (out, mut lines) = OutgoingSender::for_tests();
        let dispatcher = Dispatcher::new(module.into(), out);
        let init =
            r#"{"id":0,"method":"initialize","params":{"clientInfo":{"name":"t","version":"1"}}}"#;
        dispatcher.handle_line(init.as_bytes(), arrived).await;
        let _ = lines.recv().await;
        (dispatcher, lines)
    }

    #[tokio::test]
    async fn a_batch_item_must_be_an_object_not_a_positional_array() {
        let (out, mut lines) = OutgoingSender::for_tests();
        let dispatcher = Dispatcher::new(Methods::new(), out);
        dispatcher
            .handle_line(br#"[["2.0",2,"getAuthStatus"]]"#, Instant::now())
            .await;
        let Some(Outgoing::Line { text, .. }) = lines.recv().await else {
            panic!("no answer");
        };
        let expected = envelope::batch(&[envelope::error(None, -32600, NOT_A_REQUEST)]);
        assert_eq!(text, expected);
    }

    #[tokio::test]
    async fn a_batch_holds_a_permit_per_element_until_its_answer_is_written() {
        let mut module = jsonrpsee::RpcModule::new(());
        module
            .register_method("ping", |_, _, _| "pong")
            .expect("one method");
        let (dispatcher, mut lines) = initialized(module, Instant::now()).await;

        // 100 calls in flight elsewhere, then a batch of 1021 calls and 3 non-requests.
        let elsewhere = dispatcher.in_flight.clone().acquire_many_owned(100).await;
        let calls: Vec<String> = (1..=MAX_BATCH - 3)
            .map(|n| format!(r#"{{"id":{n},"method":"ping"}}"#))
            .collect();
        let batch = format!("[{},1,2,3]", calls.join(","));
        dispatcher
            .handle_line(batch.as_bytes(), Instant::now())
            .await;
        drop(elsewhere);
        let Some(Outgoing::Line { text, permits }) = lines.recv().await else {
            panic!("no answer");
        };
        let answers: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        let code = |code: i64| {
            answers
                .iter()
                .filter(|a| a["error"]["code"] == code)
                .count()
        };
        assert_eq!(answers.len(), MAX_BATCH);
        assert_eq!(code(-32001), 97, "calls past the bound");
        assert_eq!(code(-32600), 3, "elements that are not requests");
        // Unwritten, the answer holds its permits: 924 in flight, 100 own lines and their bytes.
        assert_eq!(dispatcher.in_flight.available_permits(), 100);
        assert_eq!(
            dispatcher.own_lines.available_permits(),
            MAX_IN_FLIGHT - 100
        );
        assert!(dispatcher.own_bytes.available_permits() < MAX_OWN_LINE_BYTES - 100 * 60);
        drop(permits);
        assert_eq!(dispatcher.in_flight.available_permits(), MAX_IN_FLIGHT);
        assert_eq!(dispatcher.own_lines.available_permits(), MAX_IN_FLIGHT);
        assert_eq!(dispatcher.own_bytes.available_permits(), MAX_OWN_LINE_BYTES);
    }

    #[tokio::test]
    async fn a_handler_that_panics_is_answered_with_an_internal_error() {
        let mut module = jsonrpsee::RpcModule::new(());
        module
            .register_async_method("boom", |_, _, _| async {
                if true {
                    panic!("a handler bug");
                }
                "never"
            })
            .expect("one method");
        let (dispatcher, mut lines) = initialized(module, Instant::now()).await;
        for _ in 0..2 {
            dispatcher
                .handle_line(
                    br#"{"jsonrpc":"2.0","id":7,"method":"boom"}"#,
                    Instant::now(),
                )
                .await;
            let Some(Outgoing::Line { text, .. }) = lines.recv().await else {
                panic!("no answer");
            };
            let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(answer["id"], 7, "{text}");
            assert_eq!(answer["error"]["code"], -32603, "{text}");
        }
    }

    #[tokio::test]
    async fn a_method_finds_when_its_line_arrived_alone_or_in_a_batch() {
        let arrived = Instant::now();
        let mut module = jsonrpsee::RpcModule::new(arrived);
        module
            .register_async_method("when", |_, arrived, _| {
                let seen = received();
                async move { seen == Some(*arrived) }
            })
            .expect("one method");
        let (dispatcher, mut lines) = initialized(module, arrived).await;
        for line in [
            r#"{"id":1,"method":"when"}"#,
            r#"[{"id":2,"method":"when"},{"id":3,"method":"when"}]"#,
        ] {
            dispatcher.handle_line(line.as_bytes(), arrived).await;
            let Some(Outgoing::Line { text, .. }) = lines.recv().await else {
                panic!("no answer");
            };
            assert!(!text.contains("false") && text.contains("true"), "{text}");
        }
        assert_eq!(received(), None, "outside the poll of a call");
    }

    #[tokio::test]
    async fn a_batch_over_the_limit_gets_one_error_naming_it() {
        let (out, mut lines) = OutgoingSender::for_tests();
        let dispatcher = Dispatcher::new(Methods::new(), out);
        for (n, answered) in [(MAX_BATCH, false), (MAX_BATCH + 1, true), (524_288, true)] {
            let batch = format!("[{}1]", "1,".repeat(n - 1));
            dispatcher
                .handle_line(batch.as_bytes(), Instant::now())
                .await;
            let Some(Outgoing::Line { text, .. }) = lines.recv().await else {
                panic!("no answer");
            };
            let expected = envelope::error(
                None,
                -32600,
                &format!(
                    "invalid request: the batch has {n} elements, more than the limit of 1024; send it in smaller batches"
                ),
            );
            assert_eq!(text == expected, answered, "{n} elements: {}", &text[..100]);
        }
        // Broken JSON is still a parse error, however long.
        let broken = format!("[{}", "1,".repeat(5000));
        dispatcher
            .handle_line(broken.as_bytes(), Instant::now())
            .await;
        let Some(Outgoing::Line { text, .. }) = lines.recv().await else {
            panic!("no answer");
        };
        assert!(text.contains("-32700"), "{text}");
    }

    #[test]
    fn only_strings_numbers_and_null_are_ids() {
        for ok in ["1", "-1", "0.5", "\"s\"", "null"] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["{}", "[]", "true", "false"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }
}
