//! `generate-json-schema --out DIR`: writes `schema/`: one JSON Schema per wire type, the
//! bundle, and the TypeScript bindings in `typescript/`.

use std::path::Path;

use auth_protocol::schema;

pub fn write(out: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    for file in schema::schema_files() {
        write_json(
            &out.join(format!("{}.json", file.name)),
            &file.schema.to_value(),
        )?;
    }
    write_json(&out.join(schema::BUNDLE_FILE), &schema::bundle())?;
    let typescript = out.join("typescript");
    std::fs::create_dir_all(&typescript)?;
    for (name, contents) in auth_protocol::typescript::typescript_files() {
        std::fs::write(typescript.join(name), contents)?;
    }
    Ok(())
}

fn write_json(path: &Path, value: &serde_json::Value) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text)
}
