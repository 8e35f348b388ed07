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
    pub name: String,
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

/// Every wire type with a file of its own, from the method list: each method's params and
/// result, each notification's params, then the error object.
fn entries() -> Vec<(String, Direction, Generate)> {
    fn root<T: JsonSchema>(generator: &mut schemars::SchemaGenerator) -> Schema {
        generator.root_schema_for::<T>()
    }
    fn entry<T: JsonSchema>(direction: Direction) -> (String, Direction, Generate) {
        (T::schema_name().into_owned(), direction, root::<T>)
    }
    struct Entries(Vec<(String, Direction, Generate)>);
    impl MethodVisitor for Entries {
        fn visit<M: Method>(&mut self) {
            self.0.push(entry::<M::Params>(Direction::ClientToServer));
            self.0.push(entry::<M::Result>(Direction::ServerToClient));
        }
    }
    impl NotificationVisitor for Entries {
        fn visit<N: Notification>(&mut self) {
            self.0.push(entry::<N::Params>(Direction::ServerToClient));
        }
    }
    let mut entries = Entries(Vec::new());
    method::visit(&mut entries);
    notification::visit(&mut entries);
    entries.0.push((
        "JsonRpcError".to_owned(),
        Direction::ServerToClient,
        json_rpc_error,
    ));
    entries.0
}

/// The error object of a failed response, with the codes this server uses.
fn json_rpc_error(_: &mut schemars::SchemaGenerator) -> Schema {
    let codes: Vec<i32> = error_code::ALL.iter().map(|c| c.code).collect();
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

/// One schema per wire type, each standing alone (a type that two entries share, once).
pub fn schema_files() -> Vec<SchemaFile> {
    let mut seen = std::collections::BTreeSet::new();
    entries()
        .into_iter()
        .filter(|(name, _, _)| seen.insert(name.clone()))
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
        defs.insert(file.name, schema);
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
