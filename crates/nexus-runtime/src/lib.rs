//! Nexus runtime: session workers and the agent loop.
//!
//! Owns inbox processing (a committed inbound message is answered exactly once, even across
//! crashes), per-session serialization (turns of one session never interleave; sessions run
//! concurrently), the agent loop (model → tools → model … until an answer or the step limit),
//! live [`TurnEvent`](nexus_core::TurnEvent) streaming, usage recording and recovery on start.
//!
//! Must never contain wire formats, configuration parsing or transport concerns: providers,
//! tools and the store come in through their traits, the gateway wires them.

mod config;
mod context;
mod error;
mod history;
mod hub;
pub mod metrics;
mod runtime;
mod turn;
mod worker;

pub use config::RuntimeConfig;
pub use error::RuntimeError;
pub use hub::EventReceiver;
pub use metrics::Metrics;
pub use nexus_tools::{ToolLimits, ToolRegistry};
pub use runtime::{ModelResolver, RequestParts, Runtime, Submission, TurnHandle};

/// Metadata key of an inbound message that narrows the agent's tools for its turn: a JSON
/// array of tool entries (a channel's access policy puts it there).
pub const TOOLS_METADATA_KEY: &str = "nexus_tools";
