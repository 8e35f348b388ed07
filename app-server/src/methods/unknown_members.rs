//! Members of params that this server does not know. They are accepted, so that a client may
//! send what a later version reads, but a typo (`includeTokens`) would otherwise go unnoticed:
//! each is logged at WARN, once per method and member name, never with its value.
//!
//! Which members a method knows comes from its params type's JSON Schema, the same one that is
//! published in `schema/`, so there is no second list to keep in step.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{LazyLock, Mutex};

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::param_errors::{Segment, show};

/// Distinct (method, member) pairs logged at most; past this, one last line says so. A client
/// sending ever new names cannot grow the server's memory or flood its log.
const MAX_LOGGED: usize = 256;

/// The members a params type declares, nested, as its JSON Schema says.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Members {
    /// An object: each member it knows and what that member holds.
    Object(BTreeMap<String, Members>),
    /// Objects told apart by the string member `tag` (`login`'s `type`): each variant's members.
    Tagged {
        tag: String,
        variants: BTreeMap<String, BTreeMap<String, Members>>,
    },
    /// Not an object, or a shape this check does not read: not checked.
    Unchecked,
}

impl Members {
    /// The members of the params type whose JSON Schema (with its `$defs`) is `schema`.
    pub fn from_schema(schema: &Value) -> Self {
        Self::read(schema, definitions(schema), 0)
    }

    fn read(schema: &Value, defs: &Map<String, Value>, depth: usize) -> Self {
        // References only go to `$defs`; the depth bound guards against a recursive type.
        if depth > 16 {
            return Self::Unchecked;
        }
        let Some(schema) = resolve(schema, defs) else {
            return Self::Unchecked;
        };
        if schema
            .get("additionalProperties")
            .is_some_and(|extra| extra != false)
        {
            // A map: any name is known.
            return Self::Unchecked;
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            return Self::Object(Self::read_properties(properties, defs, depth));
        }
        if schema.get("type").and_then(Value::as_str) == Some("object") {
            // An object with no members (`logout`'s params).
            return Self::Object(BTreeMap::new());
        }
        let Some(alternatives) = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Value::as_array)
        else {
            return Self::Unchecked;
        };
        let not_null: Vec<&Value> = alternatives
            .iter()
            .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        if let [only] = not_null.as_slice() {
            // An optional object: the object or null.
            return Self::read(only, defs, depth + 1);
        }
        Self::read_tagged(&not_null, defs, depth).unwrap_or(Self::Unchecked)
    }

    fn read_properties(
        properties: &Map<String, Value>,
        defs: &Map<String, Value>,
        depth: usize,
    ) -> BTreeMap<String, Members> {
        properties
            .iter()
            .map(|(name, schema)| (name.clone(), Self::read(schema, defs, depth + 1)))
            .collect()
    }

    /// Alternatives that are objects, each with a string constant in one same member.
    fn read_tagged(
        alternatives: &[&Value],
        defs: &Map<String, Value>,
        depth: usize,
    ) -> Option<Self> {
        let properties: Vec<&Map<String, Value>> = alternatives
            .iter()
            .map(|a| a.get("properties").and_then(Value::as_object))
            .collect::<Option<_>>()?;
        let constant = |members: &Map<String, Value>, tag: &str| {
            members.get(tag)?.get("const")?.as_str().map(str::to_owned)
        };
        let tag = properties
            .first()?
            .keys()
            .find(|tag| properties.iter().all(|p| constant(p, tag).is_some()))?
            .clone();
        let variants = properties
            .iter()
            .filter_map(|p| Some((constant(p, &tag)?, Self::read_properties(p, defs, depth))))
            .collect();
        Some(Self::Tagged { tag, variants })
    }

    /// The paths of the members of `raw` (params that parsed) that are not known here.
    pub(super) fn unknown_in(&self, raw: &str) -> Vec<Vec<Segment>> {
        let mut unknown = Vec::new();
        self.collect(raw, &mut Vec::new(), &mut unknown);
        unknown
    }

    fn collect(&self, raw: &str, path: &mut Vec<Segment>, unknown: &mut Vec<Vec<Segment>>) {
        let known = match self {
            Self::Unchecked => return,
            Self::Object(known) => known,
            Self::Tagged { tag, variants } => {
                let Some(known) = tag_of(raw, tag).and_then(|variant| variants.get(&variant))
                else {
                    return;
                };
                known
            }
        };
        if !raw.starts_with('{') {
            return;
        }
        let walk = Walk {
            known,
            path,
            unknown,
        };
        // The params parsed, so this is valid JSON; a failure would only end the check.
        let _ = serde_json::Deserializer::from_str(raw).deserialize_map(walk);
    }
}

/// A standalone schema's `$defs` (empty when it has none).
pub(super) fn definitions(schema: &Value) -> &Map<String, Value> {
    static NONE: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);
    schema
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&NONE)
}

/// `schema`, or the definition in `defs` its `$ref` names; `None` when that is not there.
pub(super) fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> Option<&'a Value> {
    match schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        Some(name) => defs.get(name),
        None => Some(schema),
    }
}

/// The string value of member `tag` of the object `raw`.
fn tag_of(raw: &str, tag: &str) -> Option<String> {
    if !raw.starts_with('{') {
        return None;
    }
    let members: BTreeMap<String, &RawValue> = serde_json::from_str(raw).ok()?;
    serde_json::from_str(members.get(tag)?.get()).ok()
}

/// A member name, borrowed from the params when it holds no escapes.
#[derive(Deserialize)]
struct Name<'a>(#[serde(borrow)] Cow<'a, str>);

/// Reads one object member by member, noting the names `known` lacks: nothing is built or
/// copied for params whose members are all known (`getAuthStatus` is polled constantly).
struct Walk<'a> {
    known: &'a BTreeMap<String, Members>,
    path: &'a mut Vec<Segment>,
    unknown: &'a mut Vec<Vec<Segment>>,
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Name(name)) = map.next_key()? {
            match self.known.get(name.as_ref()) {
                None => {
                    let mut path = self.path.clone();
                    path.push(Segment::Member(name.into_owned()));
                    self.unknown.push(path);
                    map.next_value::<IgnoredAny>()?;
                }
                Some(Members::Unchecked) => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(inner) => {
                    let value: &RawValue = map.next_value()?;
                    self.path.push(Segment::Member(name.into_owned()));
                    inner.collect(value.get(), self.path, self.unknown);
                    self.path.pop();
                }
            }
        }
        Ok(())
    }
}

/// Logs each member of `raw` that `members` does not know, once per method and name.
pub fn warn(method: &str, members: &Members, raw: &str) {
    static LOGGED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let unknown = members.unknown_in(raw);
    if unknown.is_empty() {
        return;
    }
    let mut logged = LOGGED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for path in unknown {
        if logged.len() > MAX_LOGGED {
            return;
        }
        let member = show(&path);
        if !logged.insert(format!("{method} {member}")) {
            continue;
        }
        if logged.len() > MAX_LOGGED {
            tracing::warn!(
                "more params members unknown to this server; they are ignored and no longer logged"
            );
            return;
        }
        tracing::warn!(
            method,
            member = %member,
            "params member unknown to this server, ignored: check its spelling (a later version may read it)"
        );
    }
}

#[cfg(test)]
mod tests {
    use auth_protocol::schema::params_schema;
    use auth_protocol::{
        CancelLoginParams, GetAuthStatusParams, InitializeParams, LoginParams, LogoutParams,
        ReportAuthFailureParams,
    };

    use super::*;

    fn unknown(members: &Members, raw: &str) -> Vec<String> {
        members.unknown_in(raw).iter().map(|p| show(p)).collect()
    }

    #[test]
    fn unknown_members_are_found_by_path_for_every_params_type() {
        let status = Members::from_schema(&params_schema::<GetAuthStatusParams>());
        let login = Members::from_schema(&params_schema::<LoginParams>());
        let init = Members::from_schema(&params_schema::<InitializeParams>());
        let report = Members::from_schema(&params_schema::<ReportAuthFailureParams>());
        let cancel = Members::from_schema(&params_schema::<CancelLoginParams>());
        let logout = Members::from_schema(&params_schema::<LogoutParams>());
        let cases: [(&Members, &str, &[&str]); 10] = [
            (&status, r#"{"includeToken":true}"#, &[]),
            (
                &status,
                r#"{"includeTokens":true,"refreshToken":true}"#,
                &["`includeTokens`"],
            ),
            (&login, r#"{"type":"apiKey","apiKey":"k"}"#, &[]),
            // Known to another variant, not to this one.
            (
                &login,
                r#"{"type":"apiKey","apiKey":"k","accessToken":"t"}"#,
                &["`accessToken`"],
            ),
            (
                &login,
                r#"{"type":"tokens","accessToken":"t","expiresAt":1,"scope":"s"}"#,
                &["`scope`"],
            ),
            (
                &init,
                r#"{"clientInfo":{"name":"n","version":"1","title":"T"},"capabilities":{}}"#,
                &["`clientInfo.title`", "`capabilities`"],
            ),
            (&report, r#"{"status":401,"headers":{}}"#, &["`headers`"]),
            (&cancel, r#"{"loginId":"l","reason":"r"}"#, &["`reason`"]),
            (&logout, r#"{"everywhere":true}"#, &["`everywhere`"]),
            (&logout, r#"{}"#, &[]),
        ];
        for (members, raw, expected) in cases {
            assert_eq!(unknown(members, raw), expected, "{raw}");
        }
    }

    #[test]
    fn names_that_are_not_plain_are_not_shown() {
        let status = Members::from_schema(&params_schema::<GetAuthStatusParams>());
        assert_eq!(
            unknown(&status, r#"{"sk-0123456789abcdef0123456789abcdef0":1}"#),
            ["`…`"]
        );
    }
}
