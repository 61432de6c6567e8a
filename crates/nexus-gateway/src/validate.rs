//! Checks of user-supplied fields at the API edge; past here the types are trusted.

use crate::error::ApiError;

/// Longest agent system prompt, in bytes.
pub(crate) const MAX_SYSTEM_PROMPT: usize = 64 * 1024;
/// Longest idempotency key.
pub(crate) const MAX_CLIENT_MESSAGE_ID: usize = 128;
/// Highest step limit an agent may set.
pub(crate) const MAX_STEPS: u32 = 100;

/// A name of `[a-z0-9_-]` (plus `.` when `dots`), 1–64 characters, starting alphanumeric.
pub(crate) fn name(kind: &str, value: &str, dots: bool) -> Result<(), ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && value.chars().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == '_'
                || c == '-'
                || (dots && c == '.')
        });
    if ok {
        Ok(())
    } else {
        let allowed = if dots {
            "a-z, 0-9, _, - and ."
        } else {
            "a-z, 0-9, _ and -"
        };
        Err(ApiError::invalid(format!(
            "{kind} name `{value}` is invalid: use 1-64 characters of {allowed}, starting with a \
             letter or digit"
        )))
    }
}

/// A chat message: not blank, at most `max` bytes.
pub(crate) fn chat_text(text: &str, max: usize) -> Result<(), ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::invalid("text is empty"));
    }
    if text.len() > max {
        return Err(ApiError::invalid(format!(
            "text is {} bytes; the limit is {max} bytes",
            text.len()
        )));
    }
    Ok(())
}

/// A `provider/model` address.
pub(crate) fn model(value: &str) -> Result<(), ApiError> {
    match value.split_once('/') {
        Some((p, m))
            if !p.is_empty() && !m.is_empty() && !value.chars().any(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(ApiError::invalid(format!(
            "model `{value}` must be written provider/model, e.g. openai/gpt-4o-mini"
        ))),
    }
}

/// The first line of `text`, cut to about `max` characters, for a session title.
pub(crate) fn title(text: &str, max: usize) -> String {
    let line = text.trim().lines().next().unwrap_or_default();
    let mut out: String = line.chars().take(max).collect();
    if line.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_for_length_and_characters() {
        assert!(name("agent", "assistant", false).is_ok());
        assert!(name("agent", "my-agent_2", false).is_ok());
        assert!(name("agent", "", false).is_err());
        assert!(name("agent", "Bad", false).is_err());
        assert!(name("agent", "-lead", false).is_err());
        assert!(name("agent", &"a".repeat(65), false).is_err());
        assert!(name("user", "jane.doe", true).is_ok());
        assert!(name("agent", "jane.doe", false).is_err());
    }

    #[test]
    fn blank_and_oversized_text_are_refused() {
        assert!(chat_text("  \n", 10).is_err());
        assert!(chat_text("hello", 4).is_err());
        assert!(chat_text("hello", 5).is_ok());
    }

    #[test]
    fn models_need_a_provider_prefix() {
        assert!(model("openai/gpt-4o-mini").is_ok());
        assert!(model("openrouter/meta-llama/llama-3.3-70b-instruct").is_ok());
        assert!(model("gpt-4o").is_err());
        assert!(model("/gpt").is_err());
    }

    #[test]
    fn titles_are_the_first_line_cut_short() {
        assert_eq!(title("hello\nworld", 10), "hello");
        assert_eq!(title("abcdefghijkl", 5), "abcde…");
    }
}
