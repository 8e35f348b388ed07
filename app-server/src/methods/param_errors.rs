//! Why params do not parse, said without quoting them. serde's messages quote the offending
//! value (``integer `123456789012` ``, `string "sk-…"`) and name Rust types (`u16`,
//! `struct ClientInfo`); a misplaced secret must never come back in an error. So a message is
//! rebuilt from its shape only: the member at fault, by its path, and the JSON type it must
//! have.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The tag of the internally tagged params (`login`'s `type`).
const TAG: &str = "type";
/// Longer member names are not shown (they are the client's text, not ours).
const MAX_NAME_CHARS: usize = 32;
/// Deeper paths are shortened.
const MAX_SEGMENTS: usize = 8;

/// Describes why `raw` (valid JSON) did not parse as `T`, failing with `error`.
pub(super) fn describe<T: DeserializeOwned>(raw: &str, error: &serde_json::Error) -> String {
    let message = error.to_string();
    let message = match error.line() {
        0 => message.as_str(),
        _ => message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(message, _)| message),
    };
    let path = match error.line() {
        // Errors inside an internally tagged enum come without a position.
        0 if message.starts_with("invalid ") => blame::<T>(raw, message).into_iter().collect(),
        0 => Vec::new(),
        line => path_at(raw, offset(raw, line, error.column())),
    };
    rebuild(message, &path)
}

/// One step of a path: a member of an object or an element of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    Member(String),
    Element(usize),
}

/// The message for serde's `message` about the value at `path`, in JSON terms and without
/// any of the client's values.
fn rebuild(message: &str, path: &[Segment]) -> String {
    let field = |name: &str| {
        let mut path = path.to_vec();
        path.push(Segment::Member(name.to_owned()));
        show(&path)
    };
    let expected = || {
        message
            .rsplit_once(", expected ")
            .map_or("", |(_, expected)| expected)
    };
    if let Some(name) = quoted_name(message, "missing field `") {
        return format!("{} is missing", field(name));
    }
    if let Some(name) = quoted_name(message, "duplicate field `") {
        // serde stops past the repeated name, so the path already ends with it.
        let at = match path.last() {
            Some(Segment::Member(last)) if last == name => show(path),
            _ => field(name),
        };
        return format!("{at} appears more than once");
    }
    let at = show(path);
    if message.starts_with("unknown variant `") {
        let choices = expected()
            .trim_start_matches("one of ")
            .replace(" or ", ", ")
            .replace('`', "\"");
        return format!("{at} must be one of {choices}");
    }
    if message.starts_with("unknown field `") {
        return format!("{at} has a member that is not allowed");
    }
    if message.starts_with("invalid type: ") || message.starts_with("invalid value: ") {
        return match json_type(expected()) {
            Some(kind) => format!("{at} must be {kind}"),
            None => format!("{at} does not have the expected type"),
        };
    }
    if message.starts_with("invalid length ") {
        return format!("{at} does not have the expected number of elements");
    }
    // Anything else (nesting too deep) may stop inside a member that is not ours.
    "params are not valid".to_owned()
}

/// The name in ``prefix`name` `` when `message` starts with `prefix` (a field of ours).
fn quoted_name<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message.strip_prefix(prefix)?.split('`').next()
}

/// What serde's expectation means in JSON; `None` when it is not one we know.
fn json_type(expected: &str) -> Option<&'static str> {
    Some(match expected {
        "a string" | "a borrowed string" | "string" | "a character" | "char" => "a string",
        "variant identifier" | "field identifier" => "a string",
        "a boolean" | "bool" => "true or false",
        "u8" => "an integer from 0 to 255",
        "u16" => "an integer from 0 to 65535",
        "u32" => "an integer from 0 to 4294967295",
        "u64" | "u128" | "usize" => "a non-negative integer",
        "i8" => "an integer from -128 to 127",
        "i16" => "an integer from -32768 to 32767",
        "i32" => "an integer from -2147483648 to 2147483647",
        "i64" | "i128" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "unit" | "null" => "null",
        "a sequence" | "sequence" | "an array" => "an array",
        "a map" | "map" => "an object",
        other if other.starts_with("struct ") || other.contains("enum ") => "an object",
        other if other.starts_with("tuple") || other.starts_with("an array of") => "an array",
        _ => return None,
    })
}

/// `params` for the whole, else the path in backticks (`` `clientInfo.name` ``, `` `[0]` ``).
pub(super) fn show(path: &[Segment]) -> String {
    if path.is_empty() {
        return "params".to_owned();
    }
    let mut shown = String::new();
    for segment in path.iter().take(MAX_SEGMENTS) {
        match segment {
            Segment::Member(name) => {
                if !shown.is_empty() {
                    shown.push('.');
                }
                let plain = name.chars().count() <= MAX_NAME_CHARS
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                shown.push_str(if plain { name } else { "…" });
            }
            Segment::Element(index) => shown.push_str(&format!("[{index}]")),
        }
    }
    if path.len() > MAX_SEGMENTS {
        shown.push('…');
    }
    format!("`{shown}`")
}

/// The byte offset of serde_json's 1-based `line` and `column` (the last byte it read).
fn offset(json: &str, line: usize, column: usize) -> usize {
    let line_start: usize = json
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    line_start + column
}

/// The members and elements open at byte `at` of `json` (valid JSON), outermost first: the
/// path of the value serde_json was reading when it stopped there.
fn path_at(json: &str, at: usize) -> Vec<Segment> {
    enum Open {
        /// The member being read, once its name has been read.
        Object(Option<String>),
        Array(usize),
    }
    let bytes = json.as_bytes();
    let end = at.min(bytes.len());
    let mut open = Vec::new();
    let mut i = 0;
    while i < end {
        match bytes[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(Open::Object(name @ None)) = open.last_mut() {
                    *name = serde_json::from_str(json.get(start..=i).unwrap_or("")).ok();
                }
            }
            b'{' => open.push(Open::Object(None)),
            b'[' => open.push(Open::Array(0)),
            b'}' | b']' => {
                open.pop();
            }
            b',' => match open.last_mut() {
                Some(Open::Object(name)) => *name = None,
                Some(Open::Array(index)) => *index += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    open.into_iter()
        .map_while(|open| match open {
            Open::Object(name) => name.map(Segment::Member),
            Open::Array(index) => Some(Segment::Element(index)),
        })
        .collect()
}

/// The top-level member of `raw` at fault for `message`, for errors that come without a
/// position: the one that, alone with the tag, fails the same way.
fn blame<T: DeserializeOwned>(raw: &str, message: &str) -> Option<Segment> {
    let Ok(Value::Object(members)) = serde_json::from_str::<Value>(raw) else {
        return None;
    };
    let tag = members.get(TAG);
    members
        .iter()
        .filter(|(name, _)| name.as_str() != TAG)
        .find_map(|(name, value)| {
            let mut alone = serde_json::Map::new();
            if let Some(tag) = tag {
                alone.insert(TAG.to_owned(), tag.clone());
            }
            alone.insert(name.clone(), value.clone());
            let error = serde_json::from_value::<T>(Value::Object(alone)).err()?;
            (error.to_string() == message).then(|| Segment::Member(name.clone()))
        })
}

#[cfg(test)]
mod tests {
    use auth_protocol::{
        GetAuthStatusParams, InitializeParams, LoginParams, ReportAuthFailureParams,
    };
    use proptest::prelude::*;

    use super::*;

    fn described<T: DeserializeOwned>(raw: &str) -> String {
        let error = serde_json::from_str::<T>(raw)
            .err()
            .expect("does not parse");
        describe::<T>(raw, &error)
    }

    #[test]
    fn messages_name_the_member_and_its_json_type_never_the_value() {
        let login = described::<LoginParams>;
        let report = described::<ReportAuthFailureParams>;
        let status = described::<GetAuthStatusParams>;
        let init = described::<InitializeParams>;
        let cases: [(String, &str, &str); 22] = [
            (
                status(r#"{"includeToken":true,"includeToken":false}"#),
                "`includeToken` appears more than once",
                "false",
            ),
            (
                init(r#"{"clientInfo":{"name":"sk-a","name":"sk-b","version":"1"}}"#),
                "`clientInfo.name` appears more than once",
                "sk-",
            ),
            (
                login(r#"{"type":"apiKey","apiKey":"sk-1","apiKey":"sk-2"}"#),
                "`apiKey` appears more than once",
                "sk-",
            ),
            (
                login(r#"{"type":"apiKey","apiKey":123456789012}"#),
                "`apiKey` must be a string",
                "123456789012",
            ),
            (
                login(r#"{"type":"tokens","accessToken":"sk-a","expiresAt":"sk-b"}"#),
                "`expiresAt` must be an integer",
                "sk-b",
            ),
            (
                login(r#"{"type":"tokens","expiresAt":5,"accessToken":5}"#),
                "`accessToken` must be a string",
                "5",
            ),
            (
                login(r#"{"type":"tokens","accessToken":"a","expiresAt":1.5e3}"#),
                "`expiresAt` must be an integer",
                "1500",
            ),
            (
                login(r#"{"type":"tokens","accessToken":"a","refreshToken":true}"#),
                "`refreshToken` must be a string",
                "true",
            ),
            (login(r#"{"type":"apiKey"}"#), "`apiKey` is missing", "\""),
            (
                login(r#"{"type":"sk-live-secret"}"#),
                r#"`type` must be one of "apiKey", "oauth", "deviceCode", "tokens""#,
                "sk-live",
            ),
            (login(r#"{"type":7}"#), "`type` must be a string", "7"),
            (login(r#"{"apiKey":"sk-x"}"#), "`type` is missing", "sk-x"),
            (
                report(r#"{"status":70000}"#),
                "`status` must be an integer from 0 to 65535",
                "70000",
            ),
            (
                report(r#"{"status":-1}"#),
                "`status` must be an integer from 0 to 65535",
                "-1",
            ),
            (
                report(r#"{"status":"sk-x"}"#),
                "`status` must be an integer from 0 to 65535",
                "sk-x",
            ),
            (
                report(r#"{"status":401, "body" : [12345]}"#),
                "`body` must be a string",
                "12345",
            ),
            (report(r#"{}"#), "`status` is missing", "{"),
            (
                status(r#"{"includeToken":"sk-yes"}"#),
                "`includeToken` must be true or false",
                "sk-yes",
            ),
            (
                status(r#"[{"x":1},"sk-no"]"#),
                "`[0]` must be true or false",
                "sk-no",
            ),
            (
                init(r#"{"clientInfo":{"name":123456}}"#),
                "`clientInfo.name` must be a string",
                "123456",
            ),
            (
                init(r#"{"clientInfo":{"name":"n"}}"#),
                "`clientInfo.version` is missing",
                "\"n\"",
            ),
            (
                init(r#"{"clientInfo":"sk-info"}"#),
                "`clientInfo` must be an object",
                "sk-info",
            ),
        ];
        for (message, expected, value) in cases {
            assert_eq!(message, expected);
            assert!(!message.contains(value), "{message} quotes {value}");
            for rust in ["u16", "i64", "struct", "enum", "Params", "ClientInfo"] {
                assert!(!message.contains(rust), "{message} names {rust}");
            }
        }
    }

    #[test]
    fn paths_are_found_at_the_position_serde_reports() {
        let json = r#"{"a":{"b":[1,{"c":"x,y"}]},"d":2}"#;
        let at = |needle: &str| json.find(needle).unwrap() + needle.len();
        let member = |name: &str| Segment::Member(name.to_owned());
        assert_eq!(
            path_at(json, at(r#""c":"x,y""#)),
            vec![member("a"), member("b"), Segment::Element(1), member("c")]
        );
        assert_eq!(
            path_at(json, at("[1")),
            vec![member("a"), member("b"), Segment::Element(0)]
        );
        assert_eq!(path_at(json, at(r#""d":2"#)), vec![member("d")]);
        assert_eq!(path_at(json, json.len()), vec![]);
        assert_eq!(path_at(r#"{"\"k":1}"#, 8), vec![member("\"k")]);
        assert_eq!(offset("ab\ncd", 2, 1), 4);
    }

    /// JSON built from our member names and values that must never come back: strings
    /// starting `sk-` and integers of 7 digits or more.
    fn hostile_params() -> impl Strategy<Value = Value> {
        const NAMES: [&str; 17] = [
            "type",
            "apiKey",
            "accessToken",
            "refreshToken",
            "idToken",
            "expiresAt",
            "status",
            "body",
            "wwwAuthenticate",
            "rejectedToken",
            "includeToken",
            "loginId",
            "callbackUrl",
            "scopes",
            "clientInfo",
            "name",
            "version",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (1_000_000i64..i64::MAX).prop_map(Value::from),
            (i64::MIN..-1_000_000i64).prop_map(Value::from),
            "sk-[a-z0-9]{4,8}".prop_map(Value::from),
            prop::sample::select(&["apiKey", "tokens", "oauth"][..]).prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 5, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                prop::collection::btree_map(prop::sample::select(&NAMES[..]), inner, 0..5)
                    .prop_map(|members| {
                        Value::Object(members.into_iter().map(|(k, v)| (k.into(), v)).collect())
                    }),
            ]
        })
    }

    /// The values in `json` that must not come back.
    fn secrets(json: &Value, into: &mut Vec<String>) {
        match json {
            Value::String(s) if s.starts_with("sk-") => into.push(s.clone()),
            Value::Number(n) => into.push(n.to_string()),
            Value::Array(items) => items.iter().for_each(|item| secrets(item, into)),
            Value::Object(members) => members.values().for_each(|value| secrets(value, into)),
            _ => {}
        }
    }

    fn check<T: DeserializeOwned>(raw: &str, forbidden: &[String]) -> Result<(), TestCaseError> {
        if let Err(error) = serde_json::from_str::<T>(raw) {
            let message = describe::<T>(raw, &error);
            for value in forbidden {
                prop_assert!(!message.contains(value.as_str()), "{raw}: {message}");
            }
            for rust in ["u16", "i64", "struct ", "enum ", "Params"] {
                prop_assert!(!message.contains(rust), "{raw}: {message}");
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn no_value_ever_comes_back(params in hostile_params()) {
            let raw = params.to_string();
            let mut forbidden = Vec::new();
            secrets(&params, &mut forbidden);
            check::<LoginParams>(&raw, &forbidden)?;
            check::<ReportAuthFailureParams>(&raw, &forbidden)?;
            check::<GetAuthStatusParams>(&raw, &forbidden)?;
            check::<InitializeParams>(&raw, &forbidden)?;
            check::<auth_protocol::CancelLoginParams>(&raw, &forbidden)?;
            check::<auth_protocol::CompleteLoginParams>(&raw, &forbidden)?;
            check::<auth_protocol::LogoutParams>(&raw, &forbidden)?;
        }
    }

    #[test]
    fn member_names_that_are_not_ours_are_not_shown() {
        let path = [Segment::Member(
            "sk-0123456789abcdef0123456789abcdef0".into(),
        )];
        assert_eq!(show(&path), "`…`");
        assert_eq!(show(&[Segment::Member("a b".into())]), "`…`");
        let deep = vec![Segment::Element(0); 20];
        assert_eq!(show(&deep), format!("`{}…`", "[0]".repeat(MAX_SEGMENTS)));
    }
}
