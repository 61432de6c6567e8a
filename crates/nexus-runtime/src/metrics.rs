//! Runtime metrics. Every metric name is a constant here; the gateway registers them in its
//! Prometheus registry and serves them on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Turns finished, by outcome (`done`, or a `TurnErrorKind` name).
pub const TURNS: &str = "nexus_turns";
/// Wall time of a turn from start of work to commit, in seconds.
pub const TURN_DURATION: &str = "nexus_turn_duration_seconds";
/// Time from start of work to the first text delta, in seconds.
pub const FIRST_TOKEN: &str = "nexus_turn_first_token_seconds";
/// Tokens reported by providers, by kind (`input`, `output`, `cache_read`, `cache_write`).
pub const TOKENS: &str = "nexus_llm_tokens";
/// Tool calls, by tool and outcome (`ok`, `error`).
pub const TOOL_CALLS: &str = "nexus_tool_calls";
/// Failures inside the runtime that no turn reports, by kind (`storage`, `lease`).
pub const ERRORS: &str = "nexus_runtime_errors";

/// A label set of one `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The kind.
    pub kind: String,
}

/// Labels of a tool call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    /// The tool.
    pub tool: String,
    /// `ok` or `error`.
    pub outcome: String,
}

/// The runtime's metric handles (cheap to clone; all clones update the same series).
#[derive(Debug, Clone)]
pub struct Metrics {
    pub(crate) turns: Family<KindLabel, Counter>,
    pub(crate) turn_duration: Histogram,
    pub(crate) first_token: Histogram,
    pub(crate) tokens: Family<KindLabel, Counter>,
    pub(crate) tool_calls: Family<ToolLabels, Counter>,
    pub(crate) errors: Family<KindLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            turns: Family::default(),
            // 100 µs … ~100 s
            turn_duration: Histogram::new(exponential_buckets(0.0001, 2.5, 16)),
            first_token: Histogram::new(exponential_buckets(0.0001, 2.5, 16)),
            tokens: Family::default(),
            tool_calls: Family::default(),
            errors: Family::default(),
        }
    }
}

impl Metrics {
    /// Registers every runtime metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(TURNS, "Turns finished, by outcome", self.turns.clone());
        registry.register(
            TURN_DURATION,
            "Turn wall time in seconds",
            self.turn_duration.clone(),
        );
        registry.register(
            FIRST_TOKEN,
            "Time to the first text delta in seconds",
            self.first_token.clone(),
        );
        registry.register(TOKENS, "LLM tokens, by kind", self.tokens.clone());
        registry.register(TOOL_CALLS, "Tool calls", self.tool_calls.clone());
        registry.register(ERRORS, "Runtime errors, by kind", self.errors.clone());
    }

    pub(crate) fn count(family: &Family<KindLabel, Counter>, kind: &str, n: u64) {
        family
            .get_or_create(&KindLabel {
                kind: kind.to_owned(),
            })
            .inc_by(n);
    }
}
