#![allow(clippy::unwrap_used, unreachable_pub)]
//! The web tools over real sockets on loopback: `web_fetch` against a page server (content,
//! limits, the SSRF guard) and `web_search` against the fake SearXNG.

mod web {
    mod fetch;
    mod registry;
    mod search;
    mod ssrf;
    mod support;
}
