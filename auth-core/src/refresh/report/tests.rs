//! What counts as an auth failure, and the answer to each case.

use super::*;
use Rejection::*;

/// (status, body, WWW-Authenticate, expected)
type Case<'a> = (u16, Option<&'a str>, Option<&'a str>, Rejection);

#[test]
fn what_counts_as_an_auth_failure() {
    let cases: &[Case] = &[
        (
            200,
            None,
            Some("Bearer error=\"invalid_token\""),
            NotAuthFailure,
        ),
        (204, Some("invalid api key"), None, NotAuthFailure),
        (401, None, None, AuthFailure),
        (
            401,
            Some("<html>"),
            Some("Bearer realm=\"api\""),
            AuthFailure,
        ),
        (
            403,
            Some(r#"{"type":"error","error":{"type":"authentication_error","message":"bad"}}"#),
            None,
            AuthFailure,
        ),
        (
            403,
            Some(r#"{"code":"authentication_failed"}"#),
            None,
            AuthFailure,
        ),
        (403, Some("Invalid API key provided"), None, AuthFailure),
        (403, Some("Authentication failed"), None, AuthFailure),
        (
            403,
            Some("<html><h1>Access denied</h1> by the firewall</html>"),
            None,
            NotAuthFailure,
        ),
        (403, None, None, NotAuthFailure),
        (
            400,
            None,
            Some("Bearer error=\"invalid_token\", error_description=\"expired\""),
            AuthFailure,
        ),
        (
            403,
            None,
            Some("Bearer error=\"insufficient_scope\", scope=\"admin\""),
            InsufficientScope,
        ),
        (
            401,
            None,
            Some("Bearer error=\"insufficient_scope\""),
            InsufficientScope,
        ),
        (
            403,
            Some(r#"{"error":"insufficient_scope"}"#),
            None,
            InsufficientScope,
        ),
        (429, Some("rate limited"), None, NotAuthFailure),
        (500, Some("authentication_error"), None, NotAuthFailure),
        (404, None, None, NotAuthFailure),
    ];
    for &(status, body, challenge, expected) in cases {
        assert_eq!(
            assess(status, body, challenge),
            expected,
            "{status} {body:?} {challenge:?}"
        );
    }
}

#[test]
fn the_answer_to_a_rejection_that_is_not_an_auth_failure() {
    let scope = Some(r#"Bearer error="insufficient_scope", scope="a b""#);
    let bare = Some(r#"Bearer error="insufficient_scope""#);
    /// (rejection, status, WWW-Authenticate, action, hint starts with, required scopes)
    type Row<'a> = (
        Rejection,
        u16,
        Option<&'a str>,
        Option<FailureAction>,
        &'a str,
        &'a [&'a str],
    );
    let rows: &[Row] = &[
        (
            NotAuthFailure,
            403,
            None,
            Some(FailureAction::NotAuthFailure),
            "status 403 is not an authentication failure; nothing was refreshed: handle the error as it is",
            &[],
        ),
        (
            InsufficientScope,
            403,
            bare,
            Some(FailureAction::InsufficientScope),
            INSUFFICIENT_SCOPE_HINT,
            &[],
        ),
        (
            InsufficientScope,
            403,
            scope,
            Some(FailureAction::InsufficientScope),
            "the token lacks a scope this API needs (insufficient_scope; it asks for: a b)",
            &["a", "b"],
        ),
        (AuthFailure, 401, scope, None, "", &[]),
    ];
    for &(rejection, status, challenge, action, hint, scopes) in rows {
        let answer = answer_rejection(rejection, status, challenge);
        assert_eq!(answer.as_ref().map(|a| a.action), action, "{rejection:?}");
        if let Some(answer) = answer {
            assert!(
                answer.hint.starts_with(hint),
                "{rejection:?}: {}",
                answer.hint
            );
            assert_eq!(answer.required_scopes, scopes, "{rejection:?}");
        }
    }
}

#[test]
fn the_answer_to_each_report_decision() {
    use crate::policy::Blocker;
    let answer = |action, hint: &str| Plan::Answer(Answer::new(action, hint));
    let rows = [
        (
            ReportDecision::ApiKey,
            None,
            answer(FailureAction::ApiKeyRejected, API_KEY_HINT),
        ),
        (
            ReportDecision::Poisoned,
            Some("the sign-in has expired or was revoked (invalid_grant): sign in again"),
            answer(
                FailureAction::NeedsLogin,
                "the sign-in has expired or was revoked (invalid_grant): sign in again",
            ),
        ),
        (
            ReportDecision::Poisoned,
            None,
            answer(FailureAction::NeedsLogin, "sign in again"),
        ),
        (
            ReportDecision::Blocked(Blocker::OtherClientId),
            None,
            answer(
                FailureAction::NeedsLogin,
                "the tokens were issued to another client_id than the configured one: sign in again",
            ),
        ),
        (
            ReportDecision::AlreadyRotated,
            None,
            answer(
                FailureAction::AlreadyRotated,
                "the rejected token had already been replaced: retry with authToken",
            ),
        ),
        (
            ReportDecision::DidNotHelp,
            None,
            answer(FailureAction::RefreshDidNotHelp, DID_NOT_HELP_HINT),
        ),
        (
            ReportDecision::BackingOff,
            None,
            answer(
                FailureAction::RetryLater,
                "a recent refresh failed transiently: retry after refreshError.retryAfterSecs",
            ),
        ),
        (ReportDecision::Dead, None, Plan::PoisonDeadToken),
        (ReportDecision::Refresh, Some("ignored"), Plan::Refresh),
    ];
    for (decision, poison, expected) in rows {
        assert_eq!(plan(decision, poison), expected, "{decision:?}");
    }
}

#[test]
fn the_answer_after_a_refresh_or_a_dead_token() {
    use crate::provider::classify::RefreshFailure;
    use crate::status::RefreshErrorKind;
    let permanent = RefreshFailure {
        kind: RefreshErrorKind::Permanent,
        code: Some("invalid_grant".into()),
        message: "revoked: sign in again".into(),
        retry_after: None,
    };
    let transient = RefreshFailure::transient("503: will retry");
    let failed = |failure: &RefreshFailure| Some(RefreshOutcome::Failed(failure.clone()));
    let cannot = || Some(RefreshOutcome::CannotRefresh("another provider".into()));
    use FailureAction::{NeedsLogin, Refreshed, RetryLater};
    // (outcome, a new token is stored, action, hint)
    let rows = [
        (
            Some(RefreshOutcome::Refreshed),
            true,
            Refreshed,
            "a new token was obtained: retry with authToken",
        ),
        (
            Some(RefreshOutcome::Adopted),
            true,
            Refreshed,
            "a new token was obtained: retry with authToken",
        ),
        (
            failed(&transient),
            true,
            Refreshed,
            "a new token was obtained: retry with authToken",
        ),
        (
            None,
            true,
            Refreshed,
            "a new token was obtained: retry with authToken",
        ),
        (
            failed(&permanent),
            false,
            NeedsLogin,
            "revoked: sign in again",
        ),
        (failed(&transient), false, RetryLater, "503: will retry"),
        (
            Some(RefreshOutcome::BackingOff),
            false,
            RetryLater,
            "a recent refresh failed transiently: retry after refreshError.retryAfterSecs",
        ),
        (cannot(), false, NeedsLogin, "another provider"),
        (
            Some(RefreshOutcome::Refreshed),
            false,
            NeedsLogin,
            "the token was rejected and no other token is available: sign in again",
        ),
        (
            Some(RefreshOutcome::Adopted),
            false,
            NeedsLogin,
            "the token was rejected and no other token is available: sign in again",
        ),
        (
            None,
            false,
            NeedsLogin,
            "the token was rejected and no other token is available: sign in again",
        ),
    ];
    for (outcome, new_token, action, hint) in rows {
        let name = format!("{outcome:?} {new_token}");
        assert_eq!(
            answer_refreshed(outcome, new_token),
            Answer::new(action, hint),
            "{name}"
        );
    }

    // A dead token: the recorded failure's message, or why it could not be recorded.
    let rows = [
        (failed(&permanent), "revoked: sign in again"),
        (cannot(), "another provider"),
        (
            Some(RefreshOutcome::Adopted),
            "the rejected token cannot be refreshed: sign in again",
        ),
    ];
    for (outcome, hint) in rows {
        let outcome = outcome.unwrap();
        let name = format!("{outcome:?}");
        assert_eq!(
            answer_dead(outcome),
            Answer::new(NeedsLogin, hint),
            "{name}"
        );
    }
}
