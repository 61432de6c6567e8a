//! Rate-limit buckets: a fixed window per route and top-level resource, reported in
//! `X-RateLimit-*` headers on every answer, with a 429 past the limit.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// One window of one bucket.
#[derive(Debug)]
struct Window {
    started: Instant,
    used: u32,
}

/// The windows of every (route, major resource) seen.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    windows: HashMap<(&'static str, String), Window>,
}

/// What the limiter says about one request.
#[derive(Debug)]
pub(crate) struct Verdict {
    /// Headers to answer with.
    pub(crate) headers: Vec<(&'static str, String)>,
    /// When over the limit: the delay to ask for.
    pub(crate) limited: Option<Duration>,
}

/// The opaque bucket id of `route` (stable, like Discord's hashes).
pub(crate) fn bucket_id(route: &str) -> String {
    hex::encode(&Sha256::digest(route.as_bytes())[..16])
}

impl Limiter {
    /// Counts a request on `route` for resource `major`, allowing `limit` per `window`.
    pub(crate) fn check(
        &mut self,
        route: &'static str,
        major: &str,
        limit: u32,
        window: Duration,
    ) -> Verdict {
        let now = Instant::now();
        let w = self
            .windows
            .entry((route, major.to_owned()))
            .or_insert(Window {
                started: now,
                used: 0,
            });
        if now.duration_since(w.started) >= window {
            w.started = now;
            w.used = 0;
        }
        let reset_after = window.saturating_sub(now.duration_since(w.started));
        let limited = if w.used >= limit {
            Some(reset_after)
        } else {
            w.used += 1;
            None
        };
        let reset_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            + reset_after;
        let mut headers = vec![
            ("x-ratelimit-limit", limit.to_string()),
            ("x-ratelimit-remaining", (limit - w.used).to_string()),
            (
                "x-ratelimit-reset",
                format!("{:.3}", reset_at.as_secs_f64()),
            ),
            (
                "x-ratelimit-reset-after",
                format!("{:.3}", reset_after.as_secs_f64()),
            ),
            ("x-ratelimit-bucket", bucket_id(route)),
        ];
        if let Some(wait) = limited {
            headers.extend(limited_headers(wait, false));
        }
        Verdict { headers, limited }
    }
}

/// The headers of a 429 beside the bucket ones.
pub(crate) fn limited_headers(wait: Duration, global: bool) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        (
            "retry-after",
            wait.as_secs_f64().ceil().max(1.0).to_string(),
        ),
        (
            "x-ratelimit-scope",
            if global { "global" } else { "user" }.to_owned(),
        ),
    ];
    if global {
        headers.push(("x-ratelimit-global", "true".to_owned()));
    }
    headers
}

/// The body of a 429.
pub(crate) fn limited_body(wait: Duration, global: bool) -> serde_json::Value {
    serde_json::json!({
        "message": "You are being rate limited.",
        "retry_after": (wait.as_secs_f64() * 1000.0).round() / 1000.0,
        "global": global,
    })
}
