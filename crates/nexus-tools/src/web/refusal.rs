//! Why a URL was not fetched, classified once where the failure enters (a URL check, the
//! guarded resolver, reqwest's error) and worded for the model: what happened and, for a
//! refusal, which configuration key the operator would change.

use std::net::IpAddr;
use std::time::Duration;

use url::Url;

use crate::net::{GuardError, Refused};

/// A fetch that did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL does not parse or has no host.
    #[error("invalid URL `{url}`: {message}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// Only `http` and `https` are fetched.
    #[error("refused: {url} uses the {scheme}: scheme; only http and https URLs can be fetched")]
    Scheme {
        /// The URL (a redirect target when it came from one).
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// The host is or resolves to an address tools may not reach.
    #[error("refused: {}", refused_message(.host, *.addr, *.reason, .redirected_from.as_deref(), .allow_key))]
    Refused {
        /// The host of the URL.
        host: String,
        /// The offending address.
        addr: IpAddr,
        /// Why.
        reason: Refused,
        /// The URL that redirected here, if any.
        redirected_from: Option<String>,
        /// The configuration key that allowlists ranges.
        allow_key: String,
    },
    /// The port is not allowed on a public address.
    #[error(
        "refused: port {port} of {host} is not allowed (public addresses are reached on ports \
         {allowed} only); the operator can add it to {ports_key}"
    )]
    Port {
        /// The host of the URL.
        host: String,
        /// The port asked for.
        port: u16,
        /// The allowed ports, comma-separated.
        allowed: String,
        /// The configuration key listing allowed ports.
        ports_key: String,
    },
    /// The host does not resolve.
    #[error("cannot resolve {host}: {message}")]
    Resolve {
        /// The host.
        host: String,
        /// What the resolver said.
        message: String,
    },
    /// More redirects than allowed (a loop, or a long chain).
    #[error("stopped after {max} redirects (last one to {last}); the page redirects too often")]
    TooManyRedirects {
        /// The limit.
        max: u32,
        /// The last redirect target.
        last: String,
    },
    /// A redirect without a usable `Location`.
    #[error("{url} answered a redirect ({status}) with an invalid Location `{location}`")]
    BadRedirect {
        /// The URL that redirected.
        url: String,
        /// Its status.
        status: u16,
        /// The Location header.
        location: String,
    },
    /// The fetch took longer than allowed.
    #[error("timed out after {:.1} s fetching {url}", .after.as_secs_f64())]
    Timeout {
        /// The URL being fetched.
        url: String,
        /// The limit.
        after: Duration,
    },
    /// No connection could be made, or it broke.
    #[error("cannot fetch {url}: {message}")]
    Transport {
        /// The URL being fetched.
        url: String,
        /// What failed (with its causes).
        message: String,
    },
}

/// How a refused address is described: `169.254.169.254 is a cloud metadata address
/// (link-local)`, `localhost resolves to 127.0.0.1, a loopback address`.
fn refused_message(
    host: &str,
    addr: IpAddr,
    reason: Refused,
    redirected_from: Option<&str>,
    allow_key: &str,
) -> String {
    let what = describe(addr, reason);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let subject = if bare.parse::<IpAddr>().is_ok() {
        format!("{addr} is {what}")
    } else {
        format!("{host} resolves to {addr}, {what}")
    };
    let via = redirected_from
        .map(|from| format!(" (redirected from {from})"))
        .unwrap_or_default();
    format!("{subject}{via}; the operator can allowlist it with {allow_key}")
}

fn describe(addr: IpAddr, reason: Refused) -> String {
    match reason {
        Refused::Metadata => {
            let link_local = match addr {
                IpAddr::V4(v4) => v4.is_link_local(),
                IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
            };
            if link_local {
                "a cloud metadata address (link-local)".to_owned()
            } else {
                "a cloud metadata address".to_owned()
            }
        }
        other => other.to_string(),
    }
}

impl FetchError {
    /// A guard refusal or resolution failure of `url`'s host.
    pub(crate) fn from_guard(err: GuardError, from: Option<&Url>, allow_key: &str) -> Self {
        match err {
            GuardError::Refused { host, addr, reason } => FetchError::Refused {
                host,
                addr,
                reason,
                redirected_from: from.map(Url::to_string),
                allow_key: allow_key.to_owned(),
            },
            GuardError::Resolve { host, message } => FetchError::Resolve { host, message },
        }
    }

    /// Classifies reqwest's error for `url`: a refusal by the guarded resolver (found in the
    /// error's causes), a timeout, or a transport failure with its causes.
    pub(crate) fn from_reqwest(
        err: &reqwest::Error,
        url: &Url,
        from: Option<&Url>,
        allow_key: &str,
        connect_timeout: Duration,
    ) -> Self {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = source {
            if let Some(guard) = e.downcast_ref::<GuardError>() {
                return FetchError::from_guard(guard.clone(), from, allow_key);
            }
            source = e.source();
        }
        if err.is_timeout() {
            return FetchError::Timeout {
                url: url.to_string(),
                after: connect_timeout,
            };
        }
        FetchError::Transport {
            url: url.to_string(),
            message: chain(err),
        }
    }
}

/// An error and its causes, `a: b: c`, without repeats.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_address_the_reason_and_the_allowlist_key() {
        let err = FetchError::Refused {
            host: "169.254.169.254".to_owned(),
            addr: "169.254.169.254".parse().unwrap(),
            reason: Refused::Metadata,
            redirected_from: None,
            allow_key: "tools.web_fetch.allow".to_owned(),
        };
        assert_eq!(
            err.to_string(),
            "refused: 169.254.169.254 is a cloud metadata address (link-local); the operator \
             can allowlist it with tools.web_fetch.allow"
        );
        let err = FetchError::Refused {
            host: "localhost".to_owned(),
            addr: "127.0.0.1".parse().unwrap(),
            reason: Refused::Loopback,
            redirected_from: Some("http://127.0.0.2:8080/".to_owned()),
            allow_key: "tools.web_fetch.allow".to_owned(),
        };
        assert_eq!(
            err.to_string(),
            "refused: localhost resolves to 127.0.0.1, a loopback address (redirected from \
             http://127.0.0.2:8080/); the operator can allowlist it with tools.web_fetch.allow"
        );
    }
}
