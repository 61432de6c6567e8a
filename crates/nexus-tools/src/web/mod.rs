//! The web tools: `web_search` (through a SearXNG instance the operator runs) and `web_fetch`
//! (one page, turned into text the model can read), and the guarded HTTP client behind
//! `web_fetch`.
//!
//! Modules:
//! - `config`: the serde configuration of both tools (`[tools.web_fetch]`,
//!   `[tools.web_search]`), validated into settings by the tools' constructors.
//! - `client` ([`GuardedClient`]): HTTP GET that only ever connects to addresses the
//!   [`NetworkGuard`](crate::NetworkGuard) allows, on every redirect hop; `resolver` is the DNS
//!   resolver that enforces it at connection time; `refusal` ([`FetchError`]) says why a URL
//!   was not fetched, in words the model can act on.
//! - `fetch` ([`WebFetch`]): the tool; `body` reads a bounded body and decodes its charset;
//!   `render` turns a body into text by content type; `html` converts HTML to markdown-like
//!   text.
//! - `search` ([`WebSearch`]): the tool; `searxng` speaks SearXNG's JSON API and classifies
//!   its failures; `results` formats answers for the model; `cache` keeps recent answers.
//!
//! The SearXNG URL is operator configuration (typically on a private address) and does not go
//! through the guard; every URL the model names does. This module never reads configuration
//! files or the environment.

mod body;
mod cache;
mod client;
mod config;
mod fetch;
mod html;
mod lazy;
mod refusal;
mod render;
mod resolver;
mod results;
mod search;
mod searxng;

pub use client::{Fetched, GuardedClient, GuardedClientOptions};
pub use config::{
    DEFAULT_FETCH_PORTS, TimeRange, WebConfigError, WebFetchConfig, WebSearchConfig, user_agent,
};
pub use fetch::WebFetch;
pub use html::html_to_text;
pub use refusal::FetchError;
pub use search::WebSearch;
