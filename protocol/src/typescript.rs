//! TypeScript bindings of every wire type (ts-rs), for client authors. Like the JSON Schema,
//! they are generated from the types themselves and checked in (`schema/typescript/`).

use ts_rs::{Config, TS};

use crate::*;

/// `(file name, contents)` of one `.ts` file per wire type, plus an `index.ts` that
/// re-exports them all. JSON numbers are `number` (no `bigint`): every integer on the wire is
/// far below 2^53.
pub fn typescript_files() -> Vec<(String, String)> {
    let config = Config::new().with_large_int("number");
    fn file<T: TS + 'static>(config: &Config) -> (String, String) {
        let contents = T::export_to_string(config).expect("wire types export to TypeScript");
        (format!("{}.ts", T::name(config)), contents)
    }
    let mut files = vec![
        file::<InitializeParams>(&config),
        file::<InitializeResult>(&config),
        file::<ClientInfo>(&config),
        file::<ServerInfo>(&config),
        file::<GetAuthStatusParams>(&config),
        file::<AuthStatus>(&config),
        file::<AuthMethod>(&config),
        file::<AuthState>(&config),
        file::<Account>(&config),
        file::<RefreshError>(&config),
        file::<RefreshErrorKind>(&config),
        file::<SecretString>(&config),
        file::<LoginParams>(&config),
        file::<LoginResult>(&config),
        file::<CancelLoginParams>(&config),
        file::<CancelLoginResult>(&config),
        file::<CancelLoginStatus>(&config),
        file::<CompleteLoginParams>(&config),
        file::<CompleteLoginResult>(&config),
        file::<LogoutParams>(&config),
        file::<LogoutResult>(&config),
        file::<ReportAuthFailureParams>(&config),
        file::<ReportAuthFailureResult>(&config),
        file::<AuthFailureAction>(&config),
        file::<AuthStatusChangedNotification>(&config),
        file::<LoginCompletedNotification>(&config),
    ];
    files.sort();
    let index = files
        .iter()
        .map(|(name, _)| {
            format!(
                "export type * from \"./{}\";\n",
                name.trim_end_matches(".ts")
            )
        })
        .collect::<String>();
    files.push(("index.ts".to_owned(), index));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> String {
        typescript_files()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
    }

    #[test]
    fn absent_fields_are_optional_and_null_is_only_where_it_is_sent() {
        let status = file("AuthStatus.ts");
        assert!(status.contains("authMethod: AuthMethod | null"), "{status}");
        assert!(status.contains("authToken?: SecretString"), "{status}");
        assert!(status.contains("expiresAt?: number"), "{status}");
    }

    #[test]
    fn tagged_unions_carry_their_tag() {
        let login = file("LoginParams.ts");
        assert!(login.contains("\"type\": \"apiKey\""), "{login}");
        assert!(login.contains("apiKey: SecretString"), "{login}");
    }
}
