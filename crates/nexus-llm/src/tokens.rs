//! Token counts before a call: exact BPE counts (tiktoken's `o200k_base` / `cl100k_base`) for
//! OpenAI-family models, a calibrated estimate for the others. Used to fit a conversation into
//! a context window and for budget checks; billing always uses what the provider reports.
//!
//! The estimate divides characters by a ratio per family (Claude's tokenizer yields about 3.5
//! characters of English prose per token, Gemini's and most open models' about 4), then adds
//! the same per-message and per-image overheads as the exact count. It errs on the high side
//! for prose; code and non-Latin text make more tokens per character and are the reason the
//! fitting keeps a margin.
//!
//! The vocabularies are large (several MB in memory once loaded), so each is loaded on first
//! use, and callers first check a cheap bound ([`CompletionRequest`] bytes): a request whose
//! every byte could be a token and still fits needs no count at all.

use nexus_core::llm::{ChatMessage, CompletionRequest, ContentBlock, ToolSpec};
use tiktoken_rs::CoreBPE;

/// Tokens every message costs beyond its content (role, separators).
const PER_MESSAGE: u64 = 4;
/// Tokens a request costs beyond its messages (the reply's priming).
const PER_REQUEST: u64 = 3;
/// What an image costs, whatever its size: the high end of a detailed 1024×1024 image on
/// OpenAI's scheme, more than Claude's and Gemini's per-image cost.
const PER_IMAGE: u64 = 1_105;

/// How the tokens of a model are counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tokenizer {
    /// `o200k_base` (GPT-4o, GPT-4.1, GPT-5, o-series and later).
    O200k,
    /// `cl100k_base` (GPT-4, GPT-3.5, OpenAI embeddings).
    Cl100k,
    /// Characters per token for a model whose tokenizer is not public.
    Estimate(f64),
}

impl Tokenizer {
    /// The tokenizer of the model at `address` (`provider/model`, or an OpenRouter address
    /// `openrouter/vendor/model`).
    pub fn for_model(address: &str) -> Tokenizer {
        let (provider, model) = address.split_once('/').unwrap_or(("", address));
        let (vendor, model) = match provider {
            "openrouter" => model.split_once('/').unwrap_or(("", model)),
            _ => (provider, model),
        };
        let model = model.to_ascii_lowercase();
        match vendor {
            "openai" if model.starts_with("gpt-4-") || model == "gpt-4" => Tokenizer::Cl100k,
            "openai" if model.starts_with("gpt-3.5") || model.starts_with("text-embedding") => {
                Tokenizer::Cl100k
            }
            "openai" => Tokenizer::O200k,
            "anthropic" => Tokenizer::Estimate(3.5),
            _ => Tokenizer::Estimate(4.0),
        }
    }

    fn bpe(self) -> Option<&'static CoreBPE> {
        match self {
            Tokenizer::O200k => Some(tiktoken_rs::o200k_base_singleton()),
            Tokenizer::Cl100k => Some(tiktoken_rs::cl100k_base_singleton()),
            Tokenizer::Estimate(_) => None,
        }
    }

    /// Tokens of `text`.
    pub fn count_text(self, text: &str) -> u64 {
        match (self.bpe(), self) {
            (Some(bpe), _) => bpe.encode_ordinary(text).len() as u64,
            (None, Tokenizer::Estimate(ratio)) => estimate(text, ratio),
            (None, _) => estimate(text, 4.0),
        }
    }

    /// Tokens `request` takes as input: system prompt, messages, tool definitions.
    pub fn count_request(self, request: &CompletionRequest) -> u64 {
        self.count_parts(request.system.as_deref(), &request.messages, &request.tools)
    }

    /// [`count_request`](Self::count_request) of a request's parts.
    pub fn count_parts(
        self,
        system: Option<&str>,
        messages: &[ChatMessage],
        tools: &[ToolSpec],
    ) -> u64 {
        let mut total = PER_REQUEST;
        if let Some(system) = system {
            total += PER_MESSAGE + self.count_text(system);
        }
        for message in messages {
            total += PER_MESSAGE;
            for block in &message.content {
                total += match block {
                    ContentBlock::Text { text } => self.count_text(text),
                    ContentBlock::Image { .. } => PER_IMAGE,
                    ContentBlock::ToolUse { name, input, .. } => {
                        self.count_text(name) + self.count_text(&input.to_string())
                    }
                    ContentBlock::ToolResult { content, .. } => self.count_text(content),
                };
            }
        }
        for tool in tools {
            total += self.count_text(&tool.name)
                + self.count_text(&tool.description)
                + self.count_text(&tool.parameters.to_string());
        }
        total
    }
}

/// An upper bound of the tokens of `request` that costs nothing to compute: no tokenizer
/// makes more tokens than bytes, plus the fixed overheads.
pub fn upper_bound(request: &CompletionRequest) -> u64 {
    upper_bound_parts(request.system.as_deref(), &request.messages, &request.tools)
}

/// [`upper_bound`] of a request's parts.
pub fn upper_bound_parts(
    system: Option<&str>,
    messages: &[ChatMessage],
    tools: &[ToolSpec],
) -> u64 {
    let mut total = PER_REQUEST;
    if let Some(system) = system {
        total += PER_MESSAGE + system.len() as u64;
    }
    for message in messages {
        total += PER_MESSAGE;
        for block in &message.content {
            total += match block {
                ContentBlock::Text { text } => text.len() as u64,
                ContentBlock::Image { .. } => PER_IMAGE,
                ContentBlock::ToolUse { name, input, .. } => {
                    (name.len() + input.to_string().len()) as u64
                }
                ContentBlock::ToolResult { content, .. } => content.len() as u64,
            };
        }
    }
    for tool in tools {
        total +=
            (tool.name.len() + tool.description.len() + tool.parameters.to_string().len()) as u64;
    }
    total
}

fn estimate(text: &str, chars_per_token: f64) -> u64 {
    let chars = text.chars().count();
    if chars == 0 {
        return 0;
    }
    // Counts stay far below 2^53; the ratio is a small positive constant.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "small positive counts"
    )]
    let tokens = (chars as f64 / chars_per_token).ceil() as u64;
    tokens.max(1)
}

#[cfg(test)]
mod tests {
    use nexus_core::llm::ChatRole;
    use serde_json::json;

    use super::*;

    #[test]
    fn models_get_their_family_tokenizer() {
        assert_eq!(Tokenizer::for_model("openai/gpt-4o-mini"), Tokenizer::O200k);
        assert_eq!(Tokenizer::for_model("openai/gpt-5.4"), Tokenizer::O200k);
        assert_eq!(
            Tokenizer::for_model("openai/gpt-4-turbo"),
            Tokenizer::Cl100k
        );
        assert_eq!(
            Tokenizer::for_model("openrouter/openai/gpt-4o"),
            Tokenizer::O200k
        );
        assert_eq!(
            Tokenizer::for_model("anthropic/claude-sonnet-4-5"),
            Tokenizer::Estimate(3.5)
        );
        assert_eq!(
            Tokenizer::for_model("openrouter/anthropic/claude-sonnet-4.5"),
            Tokenizer::Estimate(3.5)
        );
        assert_eq!(
            Tokenizer::for_model("gemini/gemini-2.5-flash"),
            Tokenizer::Estimate(4.0)
        );
    }

    #[test]
    fn exact_counts_match_the_published_encodings() {
        // "hello world" is two tokens in both encodings.
        assert_eq!(Tokenizer::O200k.count_text("hello world"), 2);
        assert_eq!(Tokenizer::Cl100k.count_text("hello world"), 2);
        assert_eq!(Tokenizer::O200k.count_text(""), 0);
    }

    #[test]
    fn estimates_round_up_and_never_count_text_as_nothing() {
        assert_eq!(Tokenizer::Estimate(4.0).count_text("abcdefghi"), 3);
        assert_eq!(Tokenizer::Estimate(3.5).count_text("a"), 1);
        assert_eq!(Tokenizer::Estimate(4.0).count_text(""), 0);
    }

    #[test]
    fn a_request_counts_system_messages_images_and_tools_below_the_byte_bound() {
        let request = CompletionRequest {
            model: "gpt-4o".into(),
            system: Some("You are a careful assistant.".into()),
            messages: vec![
                ChatMessage::text(ChatRole::User, "What is the weather in Paris today?"),
                ChatMessage {
                    role: ChatRole::Assistant,
                    content: vec![ContentBlock::ToolUse {
                        id: "c1".into(),
                        name: "weather".into(),
                        input: json!({"city": "Paris"}),
                    }],
                },
            ]
            .into(),
            tools: vec![ToolSpec {
                name: "weather".into(),
                description: "Weather of a city".into(),
                parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
            }],
            ..CompletionRequest::default()
        };
        let exact = Tokenizer::O200k.count_request(&request);
        let estimated = Tokenizer::Estimate(4.0).count_request(&request);
        let bound = upper_bound(&request);
        assert!(exact > 20 && exact < bound, "{exact} vs {bound}");
        assert!(
            estimated > 20 && estimated < bound,
            "{estimated} vs {bound}"
        );
    }
}
