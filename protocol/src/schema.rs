//! JSON Schema of every wire type, generated from the types themselves.
//!
//! Types the client sends (params) are described as the server deserializes them; types the
//! server sends (results, notifications) as it serializes them, so that "absent" optional fields
//! are optional, not nullable. Writing the files is the binary's job; this module only builds
//! them.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value};

use crate::*;

/// The file name of the bundle that holds every type under `$defs`.
pub const BUNDLE_FILE: &str = "auth-app-server-protocol.schema.json";

/// One generated schema: `name` is the type name, written as `<name>.json`.
pub struct SchemaFile {
    pub name: &'static str,
    pub schema: Schema,
}

#[derive(Clone, Copy)]
enum Direction {
    /// Sent by the client, read by the server.
    ClientToServer,
    /// Sent by the server.
    ServerToClient,
}

fn settings(direction: Direction) -> SchemaSettings {
    let settings = SchemaSettings::draft2020_12();
    match direction {
        Direction::ClientToServer => settings.for_deserialize(),
        Direction::ServerToClient => settings.for_serialize(),
    }
}

type Generate = fn(&mut schemars::SchemaGenerator) -> Schema;

fn entries() -> Vec<(&'static str, Direction, Generate)> {
    use Direction::*;
    fn root<T: JsonSchema>(generator: &mut schemars::SchemaGenerator) -> Schema {
        generator.root_schema_for::<T>()
    }
    vec![
        ("InitializeParams", ClientToServer, root::<InitializeParams>),
        ("InitializeResult", ServerToClient, root::<InitializeResult>),
        (
            "GetAuthStatusParams",
            ClientToServer,
            root::<GetAuthStatusParams>,
        ),
        ("AuthStatus", ServerToClient, root::<AuthStatus>),
        ("LoginParams", ClientToServer, root::<LoginParams>),
        ("LoginResult", ServerToClient, root::<LoginResult>),
        (
            "CancelLoginParams",
            ClientToServer,
            root::<CancelLoginParams>,
        ),
        (
            "CancelLoginResult",
            ServerToClient,
            root::<CancelLoginResult>,
        ),
        (
            "CompleteLoginParams",
            ClientToServer,
            root::<CompleteLoginParams>,
        ),
        (
            "CompleteLoginResult",
            ServerToClient,
            root::<CompleteLoginResult>,
        ),
        ("LogoutParams", ClientToServer, root::<LogoutParams>),
        ("LogoutResult", ServerToClient, root::<LogoutResult>),
        (
            "ReportAuthFailureParams",
            ClientToServer,
            root::<ReportAuthFailureParams>,
        ),
        (
            "ReportAuthFailureResult",
            ServerToClient,
            root::<ReportAuthFailureResult>,
        ),
        (
            "AuthStatusChangedNotification",
            ServerToClient,
            root::<AuthStatusChangedNotification>,
        ),
        (
            "LoginCompletedNotification",
            ServerToClient,
            root::<LoginCompletedNotification>,
        ),
        ("JsonRpcError", ServerToClient, json_rpc_error),
    ]
}

/// The error object of a failed response, with the codes this server uses.
fn json_rpc_error(_: &mut schemars::SchemaGenerator) -> Schema {
    use error_code::*;
    let codes = [
        PARSE_ERROR,
        INVALID_REQUEST,
        METHOD_NOT_FOUND,
        INVALID_PARAMS,
        INTERNAL_ERROR,
        OVERLOADED,
        NOT_INITIALIZED,
        NO_PROVIDER,
        CREDENTIALS_UNREADABLE,
        PROVIDER_UNAVAILABLE,
        CREDENTIALS_UNWRITABLE,
    ];
    schemars::json_schema!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "JsonRpcError",
        "description": "The `error` member of a failed response. The message says what was wrong and what to do.",
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": { "type": "integer", "enum": codes },
            "message": { "type": "string" },
            "data": {}
        }
    })
}

/// One schema per wire type, each standing alone.
pub fn schema_files() -> Vec<SchemaFile> {
    entries()
        .into_iter()
        .map(|(name, direction, generate)| {
            let mut generator = settings(direction).into_generator();
            SchemaFile {
                name,
                schema: generate(&mut generator),
            }
        })
        .collect()
}

/// The schema of params type `T` as the server reads them, standing alone (its own `$defs`):
/// what the server uses to tell members it knows from those it does not.
pub fn params_schema<T: JsonSchema>() -> Value {
    settings(Direction::ClientToServer)
        .into_generator()
        .root_schema_for::<T>()
        .to_value()
}

/// Every wire type in one document, under `$defs`.
pub fn bundle() -> Value {
    let mut defs = Map::new();
    for file in schema_files() {
        let mut schema = file.schema.to_value();
        if let Some(object) = schema.as_object_mut() {
            // Nested definitions are hoisted so that `#/$defs/X` references resolve in the bundle.
            if let Some(Value::Object(nested)) = object.remove("$defs") {
                defs.extend(nested);
            }
            object.remove("$schema");
        }
        defs.insert(file.name.to_owned(), schema);
    }
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "AuthAppServerProtocol",
        "description": format!("Wire types of auth-app-server, protocol version {PROTOCOL_VERSION}."),
        "$defs": defs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_result_fields_are_optional_not_nullable() {
        let status = schema_files()
            .into_iter()
            .find(|f| f.name == "AuthStatus")
            .unwrap();
        let value = status.schema.to_value();
        let required = value["required"].as_array().unwrap();
        assert!(required.contains(&"authMethod".into()));
        assert!(!required.contains(&"authToken".into()));
        assert_eq!(value["properties"]["expiresAt"]["type"], "integer");
    }

    #[test]
    fn every_reference_in_the_bundle_resolves() {
        let bundle = bundle();
        let text = bundle.to_string();
        for reference in text.split("\"$ref\":\"#/$defs/").skip(1) {
            let name = &reference[..reference.find('"').unwrap()];
            assert!(
                bundle["$defs"].get(name).is_some(),
                "dangling reference to {name}"
            );
        }
    }
}
