//! `generate-json-schema --out DIR`: writes `schema/`: one JSON Schema per wire type, the
//! bundle, and the TypeScript bindings in `typescript/`.

use std::fmt;
use std::path::{Path, PathBuf};

use auth_protocol::schema;

/// What was written, for the person who ran the command.
pub struct Written {
    out: PathBuf,
    schemas: usize,
    typescript: usize,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let out = self.out.display();
        write!(
            f,
            "Wrote {} JSON Schema files and the bundle {} to {out},\nand {} TypeScript files to {}.",
            self.schemas,
            schema::BUNDLE_FILE,
            self.typescript,
            self.out.join("typescript").display()
        )
    }
}

pub fn write(out: &Path) -> std::io::Result<Written> {
    std::fs::create_dir_all(out)?;
    let mut schemas = 0;
    for file in schema::schema_files() {
        write_json(
            &out.join(format!("{}.json", file.name)),
            &file.schema.to_value(),
        )?;
        schemas += 1;
    }
    write_json(&out.join(schema::BUNDLE_FILE), &schema::bundle())?;
    let typescript = out.join("typescript");
    std::fs::create_dir_all(&typescript)?;
    let mut typescript_files = 0;
    for (name, contents) in auth_protocol::typescript::typescript_files() {
        std::fs::write(typescript.join(name), contents)?;
        typescript_files += 1;
    }
    Ok(Written {
        out: out.to_path_buf(),
        schemas,
        typescript: typescript_files,
    })
}

fn write_json(path: &Path, value: &serde_json::Value) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text)
}
