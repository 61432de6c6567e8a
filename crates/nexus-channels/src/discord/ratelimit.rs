//! Discord's REST rate limits, obeyed before they bite: each route maps to the bucket its
//! `X-RateLimit-Bucket` names; a bucket (per top-level resource) with `Remaining: 0` holds the
//! next call on it until `Reset-After`; a 429 holds its bucket, and a global 429 holds every
//! call, for `retry_after`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use nexus_core::ChannelError;
use reqwest::header::HeaderMap;
use tokio::time::Instant;

/// A REST route: its template (`POST /channels/{id}/messages`) and top-level resource id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) template: &'static str,
    pub(crate) major: String,
}

impl Route {
    pub(crate) fn new(template: &'static str, major: &str) -> Route {
        Route {
            template,
            major: major.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    remaining: u32,
    reset_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    /// Route template → the bucket id Discord named for it.
    buckets_of: HashMap<&'static str, String>,
    /// (bucket id or template, major) → what is left in the window.
    buckets: HashMap<(String, String), Bucket>,
    /// Every call waits until then (a global 429).
    global_until: Option<Instant>,
}

impl State {
    fn key(&self, route: &Route) -> (String, String) {
        let bucket = self
            .buckets_of
            .get(route.template)
            .cloned()
            .unwrap_or_else(|| route.template.to_owned());
        (bucket, route.major.clone())
    }
}

/// The rate-limit state of one bot token.
#[derive(Debug, Default)]
pub(crate) struct RateLimits {
    state: Mutex<State>,
}

impl RateLimits {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a slot on `route`'s bucket, or says until when to wait for one.
    fn try_acquire(&self, route: &Route, now: Instant) -> Option<Instant> {
        let mut state = self.lock();
        if let Some(until) = state.global_until {
            if until > now {
                return Some(until);
            }
            state.global_until = None;
        }
        let key = state.key(route);
        let bucket = state.buckets.get(&key).copied();
        match bucket {
            Some(bucket) if bucket.reset_at <= now => {
                state.buckets.remove(&key);
                None
            }
            Some(bucket) if bucket.remaining == 0 => Some(bucket.reset_at),
            Some(_) => {
                if let Some(bucket) = state.buckets.get_mut(&key) {
                    bucket.remaining -= 1;
                }
                None
            }
            None => None,
        }
    }

    /// Waits until a call on `route` may go out. A wait longer than `max_wait` is not slept
    /// but returned as `RateLimited`.
    pub(crate) async fn acquire(
        &self,
        route: &Route,
        max_wait: Duration,
    ) -> Result<(), ChannelError> {
        loop {
            let now = Instant::now();
            let Some(until) = self.try_acquire(route, now) else {
                return Ok(());
            };
            let wait = until.saturating_duration_since(now);
            if wait > max_wait {
                return Err(ChannelError::RateLimited {
                    retry_after: Some(wait),
                });
            }
            tracing::debug!(
                route = route.template,
                wait_ms = wait.as_millis() as u64,
                "Waiting for a Discord rate-limit bucket"
            );
            tokio::time::sleep_until(until).await;
        }
    }

    /// Learns from the `X-RateLimit-*` headers of an answer on `route`.
    pub(crate) fn update(&self, route: &Route, headers: &HeaderMap) {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let mut state = self.lock();
        if let Some(bucket) = text("x-ratelimit-bucket") {
            state.buckets_of.insert(route.template, bucket.to_owned());
        }
        let remaining = text("x-ratelimit-remaining").and_then(|v| v.parse::<u32>().ok());
        let reset_after = text("x-ratelimit-reset-after").and_then(seconds);
        if let (Some(remaining), Some(reset_after)) = (remaining, reset_after) {
            let key = state.key(route);
            let reset_at = Instant::now() + reset_after;
            state.buckets.insert(
                key,
                Bucket {
                    remaining,
                    reset_at,
                },
            );
        }
    }

    /// Holds `route`'s bucket, or every call when `global`, for `retry_after`.
    pub(crate) fn limited(&self, route: &Route, global: bool, retry_after: Duration) {
        let until = Instant::now() + retry_after;
        let mut state = self.lock();
        if global {
            state.global_until = Some(state.global_until.map_or(until, |u| u.max(until)));
        } else {
            let key = state.key(route);
            state.buckets.insert(
                key,
                Bucket {
                    remaining: 0,
                    reset_at: until,
                },
            );
        }
    }
}

/// Seconds as Discord writes them (`"1.5"`, `"64.57"`), bounded to a day.
pub(crate) fn seconds(text: &str) -> Option<Duration> {
    let value: f64 = text.trim().parse().ok()?;
    seconds_f64(value)
}

/// A float of seconds as a duration; negative, infinite or absurd values are refused.
pub(crate) fn seconds_f64(value: f64) -> Option<Duration> {
    (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value.min(86_400.0)))
}
