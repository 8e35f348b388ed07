//! Text a provider sent (or whoever answered in its name), and the bounds it is held to
//! before it reaches a log line, an error, `auth.json` or `registrations.json`: shown cut
//! short and quoted (a newline or an escape sequence cannot forge a log line), messages kept
//! to [`MAX_MESSAGE_BYTES`], identifiers and tokens refused past their limits.

/// Characters of provider text an error or a log line shows.
pub const SHOWN_CHARS: usize = 200;
/// A stored message (a backoff's or a poisoning's reason) is cut to this many bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// The longest `client_id` accepted from a registration answer (RFC 7591).
pub const MAX_CLIENT_ID_BYTES: usize = 1024;
/// The longest access, refresh or ID token accepted from a token endpoint.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Words from the provider cut to [`SHOWN_CHARS`] and quoted, control characters escaped.
pub fn shown(text: &str) -> String {
    let cut: String = text.chars().take(SHOWN_CHARS).collect();
    if cut.len() < text.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

/// `message` cut to at most [`MAX_MESSAGE_BYTES`] bytes (on a character boundary, marked
/// with `…`).
pub fn capped(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message.to_owned();
    }
    let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_text_is_quoted_escaped_and_cut() {
        assert_eq!(shown("plain"), "\"plain\"");
        assert_eq!(
            shown("id\n2026-01-01 INFO forged\u{1b}[2J"),
            "\"id\\n2026-01-01 INFO forged\\u{1b}[2J\""
        );
        let long = "é".repeat(500_000);
        let cut = shown(&long);
        assert!(cut.chars().count() <= SHOWN_CHARS + 3, "{}", cut.len());
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn messages_are_capped_on_a_character_boundary() {
        assert_eq!(capped("short"), "short");
        for text in ["x".repeat(5000), "é".repeat(5000), "€".repeat(2000)] {
            let cut = capped(&text);
            assert!(cut.len() <= MAX_MESSAGE_BYTES, "{}", cut.len());
            assert!(cut.ends_with('…'));
        }
        let exact = "x".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(capped(&exact), exact);
    }
}
