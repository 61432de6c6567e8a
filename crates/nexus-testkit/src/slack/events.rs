//! The Events API sender: envelopes POSTed to the app's Request URL, signed v0, retried like
//! Slack (at once, ~1 min, ~5 min by default) with `X-Slack-Retry-Num` and
//! `X-Slack-Retry-Reason` when the answer is not 2xx or is later than 3 s, unless the answer
//! carries `X-Slack-No-Retry: 1`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::Shared;
use crate::journal::lock;

/// Where events go in Events API mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) signing_secret: String,
}

/// What became of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The app answered in time with this status.
    Answered(u16),
    /// No answer within the timeout (Slack's `http_timeout`).
    TimedOut,
    /// The connection failed.
    ConnectionFailed,
}

/// One POST of an event to the Request URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventAttempt {
    /// The envelope's `event_id` (`None` for `url_verification`).
    pub event_id: Option<String>,
    /// `X-Slack-Retry-Num` (0 for the first attempt, which carries no retry headers).
    pub retry_num: u32,
    /// `X-Slack-Retry-Reason`.
    pub retry_reason: Option<String>,
    /// What happened.
    pub outcome: AttemptOutcome,
}

/// The app's answer to a request the fake sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAnswer {
    /// HTTP status.
    pub status: u16,
    /// Response headers, names in lowercase.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RawAnswer {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `v0=hex(HMAC_SHA256(secret, "v0:{timestamp}:{body}"))`.
pub fn sign(signing_secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(signing_secret.as_bytes()) {
        Ok(mac) => mac,
        Err(err) => panic!("HMAC takes keys of any length: {err}"),
    };
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs `body` with `headers` to `url`, waiting at most the configured events timeout. A
/// request still running at the timeout keeps running in the background, as Slack's do.
pub(crate) async fn post(
    shared: &Shared,
    url: &str,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
) -> Result<RawAnswer, AttemptOutcome> {
    let mut request = shared.http.post(url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let running = tokio::spawn(async move {
        let response = request
            .send()
            .await
            .map_err(|_| AttemptOutcome::ConnectionFailed)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|_| AttemptOutcome::ConnectionFailed)?
            .to_vec();
        Ok(RawAnswer {
            status,
            headers,
            body,
        })
    });
    match tokio::time::timeout(shared.config.events_timeout, running).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Err(AttemptOutcome::ConnectionFailed),
        Err(_) => Err(AttemptOutcome::TimedOut),
    }
}

/// The signed headers of a POST of `body` at `timestamp`.
pub(crate) fn signed_headers(
    target: &Target,
    timestamp: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-slack-request-timestamp".into(), timestamp.to_string()),
        (
            "x-slack-signature".into(),
            sign(&target.signing_secret, timestamp, body),
        ),
    ]
}

/// One signed attempt of `payload`, recorded. `Some(reason)` when Slack would retry.
async fn attempt(
    shared: &Shared,
    target: &Target,
    body: &[u8],
    event_id: Option<String>,
    retry: Option<(u32, String)>,
) -> Option<String> {
    let mut headers = signed_headers(target, now_secs(), body);
    if let Some((num, reason)) = &retry {
        headers.push(("x-slack-retry-num".into(), num.to_string()));
        headers.push(("x-slack-retry-reason".into(), reason.clone()));
    }
    let result = post(shared, &target.url, body.to_vec(), headers).await;
    let (outcome, again) = match result {
        Ok(answer) if (200..300).contains(&answer.status) => {
            (AttemptOutcome::Answered(answer.status), None)
        }
        Ok(answer) => {
            let no_retry = answer.header("x-slack-no-retry") == Some("1");
            let again = (!no_retry).then(|| "http_error".to_owned());
            (AttemptOutcome::Answered(answer.status), again)
        }
        Err(AttemptOutcome::TimedOut) => (AttemptOutcome::TimedOut, Some("http_timeout".into())),
        Err(other) => (other, Some("connection_failed".into())),
    };
    lock(&shared.events_log).push(EventAttempt {
        event_id,
        retry_num: retry.as_ref().map_or(0, |(n, _)| *n),
        retry_reason: retry.map(|(_, r)| r),
        outcome,
    });
    shared.changed.notify_waiters();
    again
}

/// Delivers `payload` (an `event_callback` envelope) to the target: the first attempt is
/// awaited, the retries Slack would make run in the background. `first_retry` > 0 sends it as
/// that retry (an event Slack sends again).
pub(crate) async fn deliver(
    shared: &Arc<Shared>,
    target: Target,
    payload: Value,
    first_retry: u32,
) {
    let body = payload.to_string().into_bytes();
    let event_id = payload["event_id"].as_str().map(str::to_owned);
    let retry = (first_retry > 0).then(|| (first_retry, "http_timeout".to_owned()));
    let Some(reason) = attempt(shared, &target, &body, event_id.clone(), retry).await else {
        return;
    };
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let mut reason = reason;
        for num in (first_retry + 1)..=3 {
            let delay = shared
                .config
                .events_retry_delays
                .get(num as usize - 1)
                .copied()
                .unwrap_or_default();
            tokio::time::sleep(delay).await;
            match attempt(
                &shared,
                &target,
                &body,
                event_id.clone(),
                Some((num, reason)),
            )
            .await
            {
                Some(next) => reason = next,
                None => return,
            }
        }
    });
}
