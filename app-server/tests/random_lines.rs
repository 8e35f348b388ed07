//! Randomized stdin for the real server (the quick sibling of `fuzz/`'s `line_handler` target):
//! lines mixing requests with random params, notifications, batches, cut-off requests and
//! random bytes. Whatever the mix, every line written is valid JSON-RPC 2.0 and every complete
//! request is answered exactly once.

use std::collections::HashMap;

use auth_app_server::fuzzing::{Line, Message, check_output, serve_bytes};
use proptest::prelude::*;
use serde_json::{Value, json};

const METHODS: [&str; 10] = [
    "initialize",
    "initialized",
    "getAuthStatus",
    "login",
    "cancelLogin",
    "completeLogin",
    "logout",
    "reportAuthFailure",
    "nope",
    "",
];

/// Params: absent, well-formed for some method, or any JSON at all.
fn params() -> impl Strategy<Value = Option<Value>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
    ];
    let any_json = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    });
    prop_oneof![
        Just(None),
        Just(Some(json!({"clientInfo": {"name": "t", "version": "1"}}))),
        Just(Some(json!({"type": "apiKey", "apiKey": "sk-random-1"}))),
        Just(Some(json!({"type": "browser"}))),
        Just(Some(json!({"refreshToken": true}))),
        Just(Some(
            json!({"loginId": "00000000-0000-0000-0000-000000000000"})
        )),
        Just(Some(
            json!({"status": 401, "wwwAuthenticate": "Bearer error=\"invalid_token\""})
        )),
        Just(Some(
            json!({"loginId": "login-x", "callbackUrl": "http://127.0.0.1:1/callback?code=c&state=s"})
        )),
        any_json.prop_map(Some),
    ]
}

#[derive(Debug, Clone)]
enum Part {
    /// A complete request; answered exactly once.
    Request {
        method: usize,
        params: Option<Value>,
    },
    Notification {
        method: usize,
        params: Option<Value>,
    },
    Batch(Vec<(usize, Option<Value>)>),
    /// The first bytes of a request.
    Cut {
        method: usize,
        keep: usize,
    },
    /// Anything but a newline.
    Bytes(Vec<u8>),
}

fn part() -> impl Strategy<Value = Part> {
    let method = 0..METHODS.len();
    prop_oneof![
        4 => (method.clone(), params()).prop_map(|(method, params)| Part::Request { method, params }),
        1 => (method.clone(), params()).prop_map(|(method, params)| Part::Notification { method, params }),
        1 => prop::collection::vec((method.clone(), params()), 1..4).prop_map(Part::Batch),
        1 => (method, 0..80usize).prop_map(|(method, keep)| Part::Cut { method, keep }),
        1 => prop::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..48)
            .prop_map(Part::Bytes),
    ]
}

fn request(id: &str, method: usize, params: &Option<Value>) -> Value {
    let mut request = json!({"jsonrpc": "2.0", "id": id, "method": METHODS[method]});
    if let Some(params) = params {
        request["params"] = params.clone();
    }
    request
}

/// The input, and the ids (as written on the wire) that must be answered once each.
fn render(parts: &[Part]) -> (Vec<u8>, Vec<String>) {
    let (mut input, mut expected) = (Vec::new(), Vec::new());
    for (n, part) in parts.iter().enumerate() {
        match part {
            Part::Request { method, params } => {
                let id = format!("req-{n}");
                input.extend(request(&id, *method, params).to_string().bytes());
                expected.push(format!("\"{id}\""));
            }
            Part::Notification { method, params } => {
                let mut request = request("", *method, params);
                request.as_object_mut().unwrap().remove("id");
                input.extend(request.to_string().bytes());
            }
            Part::Batch(items) => {
                let batch: Vec<Value> = items
                    .iter()
                    .enumerate()
                    .map(|(k, (method, params))| {
                        let id = format!("req-{n}-{k}");
                        expected.push(format!("\"{id}\""));
                        request(&id, *method, params)
                    })
                    .collect();
                input.extend(Value::from(batch).to_string().bytes());
            }
            Part::Cut { method, keep } => {
                let text = request(&format!("cut-{n}"), *method, &None).to_string();
                input.extend(&text.as_bytes()[..(*keep).min(text.len() - 1)]);
            }
            Part::Bytes(bytes) => input.extend(bytes),
        }
        input.push(b'\n');
    }
    (input, expected)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_line_is_json_rpc_and_every_request_is_answered_once(
        parts in prop::collection::vec(part(), 1..16)
    ) {
        let (input, expected) = render(&parts);
        let lines = serve_bytes(&input);
        let checked = check_output(&input, &lines).map_err(TestCaseError::fail)?;

        let mut answers: HashMap<String, usize> = HashMap::new();
        for line in checked {
            let messages = match line {
                Line::Single(message) => vec![message],
                Line::Batch(messages) => messages,
            };
            for message in messages {
                if let Message::Response { id, .. } = message {
                    *answers.entry(id).or_default() += 1;
                }
            }
        }
        for id in &expected {
            prop_assert_eq!(answers.get(id).copied(), Some(1), "answers to {}", id);
        }
        for (id, count) in &answers {
            prop_assert!(
                id == "null" || expected.contains(id),
                "an answer to {} ({} times), which no complete request carried", id, count
            );
        }
    }
}
