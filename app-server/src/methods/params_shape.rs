//! What a method's params look like, read from the params type's JSON Schema (the one published
//! in `schema/`): said in JSON terms in error messages (`{"loginId":string}`), and the members
//! the server knows, to tell them from those it does not. Nothing here is written by hand, so a
//! new method or member is described as soon as its type is.
//!
//! The schemas are generated at build time (`build.rs`) and kept in the binary as text: reading
//! one is parsing a few hundred bytes of JSON, where generating it with schemars at run time
//! ran schemars' code on the first `initialize` (memory: see docs/performance.md).

use auth_protocol::Method;
use serde_json::{Map, Value};

include!(concat!(env!("OUT_DIR"), "/params_schemas.rs"));

use super::unknown_members::{Members, definitions, resolve};

/// Deeper nesting is shown as `…` (the schemas are shallow; this bounds a recursive one).
const MAX_DEPTH: usize = 8;

pub(super) struct ParamsShape {
    method: &'static str,
    expected: String,
    members: Members,
}

impl ParamsShape {
    /// The shape of `M`'s params.
    pub fn of<M: Method>() -> Self {
        let text = params_schema_text(M::NAME).expect("build.rs writes every method's schema");
        let schema: Value = serde_json::from_str(text).expect("build.rs writes JSON");
        let shape = describe(&schema);
        // From a `Value`, not from the text `{}`: a failed parse of text computes the error's
        // position with `memrchr`, whose first call probes the CPU, slow in a virtual machine
        // and on the first `initialize`'s path (docs/performance.md).
        let may_be_omitted = serde_json::from_value::<M::Params>(Value::Object(Map::new())).is_ok();
        Self {
            method: M::NAME,
            expected: if may_be_omitted {
                format!("no params, or {shape}")
            } else {
                shape
            },
            members: Members::from_schema(&schema),
        }
    }

    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The params in JSON terms, for error messages.
    pub fn expected(&self) -> &str {
        &self.expected
    }

    pub fn members(&self) -> &Members {
        &self.members
    }
}

/// The JSON Schema `schema` (with its `$defs`) in JSON terms: objects with their members
/// (`"name"?:` when optional, required members first), `string`, `integer`, `boolean`,
/// constants as JSON, alternatives joined by ` | `.
pub fn describe(schema: &Value) -> String {
    render(schema, definitions(schema), 0)
}

fn render(schema: &Value, defs: &Map<String, Value>, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return "…".to_owned();
    }
    let Some(schema) = resolve(schema, defs) else {
        return "any".to_owned();
    };
    if let Some(constant) = schema.get("const") {
        return constant.to_string();
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        return join(values.iter().map(Value::to_string));
    }
    for keyword in ["oneOf", "anyOf"] {
        if let Some(Value::Array(alternatives)) = schema.get(keyword) {
            return join(alternatives.iter().map(|a| render(a, defs, depth + 1)));
        }
    }
    match schema.get("type") {
        Some(Value::String(kind)) => render_type(kind, schema, defs, depth),
        Some(Value::Array(kinds)) => join(
            kinds
                .iter()
                .filter_map(Value::as_str)
                .map(|kind| render_type(kind, schema, defs, depth)),
        ),
        _ => "any".to_owned(),
    }
}

fn render_type(kind: &str, schema: &Value, defs: &Map<String, Value>, depth: usize) -> String {
    match kind {
        "object" => render_object(schema, defs, depth),
        "array" => match schema.get("items") {
            Some(items) => format!("[{}]", render(items, defs, depth + 1)),
            None => "array".to_owned(),
        },
        other => other.to_owned(),
    }
}

fn render_object(schema: &Value, defs: &Map<String, Value>, depth: usize) -> String {
    let empty = Map::new();
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    if properties.is_empty()
        && schema
            .get("additionalProperties")
            .is_some_and(|a| a != false)
    {
        return "object".to_owned();
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let optional = properties
        .keys()
        .map(String::as_str)
        .filter(|name| !required.contains(name));
    let members: Vec<String> = required
        .iter()
        .copied()
        .chain(optional)
        .filter_map(|name| {
            let member = properties.get(name)?;
            let mark = if required.contains(&name) { "" } else { "?" };
            let name = Value::from(name);
            Some(format!("{name}{mark}:{}", render(member, defs, depth + 1)))
        })
        .collect();
    format!("{{{}}}", members.join(","))
}

fn join(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join(" | ")
}

#[cfg(test)]
mod tests {
    use auth_protocol::method;

    use super::*;

    #[test]
    fn every_method_is_described_from_its_schema() {
        let cases = [
            (
                ParamsShape::of::<method::Initialize>(),
                r#"{"clientInfo":{"name":string,"version":string}}"#,
            ),
            (
                ParamsShape::of::<method::GetAuthStatus>(),
                r#"no params, or {"credential"?:string,"includeToken"?:boolean,"refreshToken"?:boolean}"#,
            ),
            (
                ParamsShape::of::<method::Login>(),
                concat!(
                    r#"{"type":"apiKey","apiKey":string,"credential"?:string} | "#,
                    r#"{"type":"oauth","credential"?:string,"provider"?:{"clientId"?:string,"clientMetadataUrl"?:string,"issuer"?:string,"protectedResource"?:string,"resource"?:string,"scopes"?:[string]},"scopes"?:[string]} | "#,
                    r#"{"type":"deviceCode","credential"?:string,"provider"?:{"clientId"?:string,"clientMetadataUrl"?:string,"issuer"?:string,"protectedResource"?:string,"resource"?:string,"scopes"?:[string]},"scopes"?:[string]} | "#,
                    r#"{"type":"tokens","accessToken":string,"credential"?:string,"expiresAt"?:integer,"idToken"?:string,"provider"?:{"clientId"?:string,"clientMetadataUrl"?:string,"issuer"?:string,"protectedResource"?:string,"resource"?:string,"scopes"?:[string]},"refreshToken"?:string}"#
                ),
            ),
            (
                ParamsShape::of::<method::CancelLogin>(),
                r#"{"loginId":string}"#,
            ),
            (
                ParamsShape::of::<method::CompleteLogin>(),
                r#"{"loginId":string,"callbackUrl":string}"#,
            ),
            (
                ParamsShape::of::<method::Logout>(),
                r#"no params, or {"credential"?:string}"#,
            ),
            (
                ParamsShape::of::<method::ReportAuthFailure>(),
                r#"{"status":integer,"body"?:string,"credential"?:string,"rejectedToken"?:string,"wwwAuthenticate"?:string}"#,
            ),
            (
                ParamsShape::of::<method::ListCredentials>(),
                "no params, or {}",
            ),
        ];
        for (shape, expected) in cases {
            assert_eq!(shape.expected(), expected, "{}", shape.method());
        }
    }

    #[test]
    fn the_schemas_built_in_are_those_of_the_params_types() {
        struct Check;
        impl auth_protocol::MethodVisitor for Check {
            fn visit<M: Method>(&mut self) {
                let built_in: Value =
                    serde_json::from_str(params_schema_text(M::NAME).unwrap()).unwrap();
                let generated = auth_protocol::schema::params_schema::<M::Params>();
                assert_eq!(built_in, generated, "{}", M::NAME);
            }
        }
        auth_protocol::method::visit(&mut Check);
    }

    #[test]
    fn arrays_nullable_types_and_enums() {
        let schema = serde_json::json!({
            "type": "object",
            "required": ["kind"],
            "properties": {
                "kind": {"enum": ["a", "b"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "note": {"type": ["string", "null"]}
            }
        });
        assert_eq!(
            describe(&schema),
            r#"{"kind":"a" | "b","note"?:string | null,"tags"?:[string]}"#
        );
    }
}
