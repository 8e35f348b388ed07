//! Writes each method's params JSON Schema into the binary at build time, as text
//! (`$OUT_DIR/params_schemas.rs`), so that the server reads a method's params shape from it
//! without running schemars: building the schema at run time, on the first `initialize` (the
//! handshake checks its params), cost about 0.5 MB of resident memory (docs/performance.md).

use std::fmt::Write as _;

use auth_protocol::schema::params_schema;
use auth_protocol::{Method, MethodVisitor};

struct Schemas(String);

impl MethodVisitor for Schemas {
    fn visit<M: Method>(&mut self) {
        let text = params_schema::<M::Params>().to_string();
        writeln!(self.0, "        {:?} => Some({:?}),", M::NAME, text).unwrap();
    }
}

fn main() {
    let mut schemas = Schemas(String::new());
    auth_protocol::method::visit(&mut schemas);
    let code = format!(
        "/// The JSON Schema of method `name`'s params (as `schema/` publishes it), as text.\n\
         pub fn params_schema_text(name: &str) -> Option<&'static str> {{\n    \
         match name {{\n{}        _ => None,\n    }}\n}}\n",
        schemas.0
    );
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    std::fs::write(out.join("params_schemas.rs"), code).unwrap();
    // Re-run when the protocol crate (a build dependency) changes, which cargo tracks itself.
    println!("cargo::rerun-if-changed=build.rs");
}
