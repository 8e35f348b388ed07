//! The providers of named credentials (contract version 3): the `[credentials.NAME]` tables of
//! `config.toml`, and the `provider` object of a `login`, each checked as `[provider]` is.

use std::collections::BTreeMap;
use std::path::Path;

use super::{
    ConfigError, ProviderConfig, ProviderOverrides, ProviderSection, provider_from,
    read_config_file,
};

/// The name of the default credential, whose provider is `[provider]`.
pub(super) const DEFAULT: &str = crate::registry::DEFAULT_NAME;

/// `[credentials.default]`: a configuration error, for the default credential too.
pub(super) fn default_table_error() -> ConfigError {
    ConfigError::Credential {
        table: "[credentials.default]".into(),
        reason:
            "the default credential's provider is the [provider] table: move these settings there"
                .into(),
    }
}

/// The `[credentials.NAME]` tables of `<home>/config.toml` (contract version 3), each checked
/// as `[provider]` is (flags and environment apply to `[provider]` only): a table whose name
/// breaks the rule, `[credentials.default]`, or a table that is not valid is an error of its
/// own, naming the table (the others stay usable). `Err` when `config.toml` itself cannot be
/// read.
pub fn load_credential_tables(
    home: &Path,
) -> Result<BTreeMap<String, Result<ProviderConfig, ConfigError>>, ConfigError> {
    let tables = read_config_file(home)?.credentials;
    let mut providers = BTreeMap::new();
    for (name, value) in tables {
        let table = format!("[credentials.{name}]");
        let error = |reason: String| ConfigError::Credential {
            table: table.clone(),
            reason,
        };
        let provider = if name == DEFAULT {
            Err(default_table_error())
        } else if !crate::registry::is_valid_name(&name) {
            Err(error(format!(
                "a credential name must match {}: rename the table",
                crate::registry::NAME_RULE
            )))
        } else {
            value
                .try_into::<ProviderSection>()
                .map_err(|e| error(e.message().trim_end().to_owned()))
                .and_then(|section| {
                    provider_from(home, section, &ProviderOverrides::default())
                        .map_err(|e| error(e.to_string()))
                })
                .and_then(|provider| {
                    provider.ok_or_else(|| {
                        error(
                            "set `issuer` or `protected_resource` (the keys of [provider])".into(),
                        )
                    })
                })
        };
        providers.insert(name, provider);
    }
    Ok(providers)
}

/// The provider of a named credential given by the `login` that creates it (contract version
/// 3): the keys of `[provider]` a host knows.
#[derive(Debug, Clone, Default)]
pub struct ProviderObject {
    pub issuer: Option<String>,
    pub protected_resource: Option<String>,
    pub client_id: Option<String>,
    pub client_metadata_url: Option<String>,
    pub scopes: Vec<String>,
    pub resource: Option<String>,
}

impl ProviderObject {
    /// Checked as `[provider]` is; an error names the member (`provider.issuer`) and the fix.
    pub fn check(self, home: &Path) -> Result<ProviderConfig, String> {
        let section = ProviderSection {
            issuer: self.issuer,
            client_id: self.client_id,
            client_metadata_url: self.client_metadata_url,
            scopes: self.scopes,
            resource: self.resource,
            protected_resource: self.protected_resource,
            ..ProviderSection::default()
        };
        let member = |field: &str| match field {
            "protected_resource" => "protectedResource",
            "client_id" => "clientId",
            "client_metadata_url" => "clientMetadataUrl",
            "issuer" => "issuer",
            "scopes" => "scopes",
            _ => "resource",
        };
        match provider_from(home, section, &ProviderOverrides::default()) {
            Ok(Some(provider)) => Ok(provider),
            Ok(None) => Err(
                "\"provider\" needs \"issuer\" or \"protectedResource\" (the authorization server, or the MCP server whose metadata names it)".into(),
            ),
            Err(ConfigError::Field { field, reason }) => Err(format!(
                "\"provider\".\"{}\" is not valid: {}",
                member(field),
                reason
                    .replace("`issuer`", "\"issuer\"")
                    .replace("`protected_resource`", "\"protectedResource\"")
                    .replace("`client_id`", "\"clientId\"")
                    .replace("`client_metadata_url`", "\"clientMetadataUrl\"")
            )),
            Err(other) => Err(format!("\"provider\" is not valid: {other}")),
        }
    }
}
