//! `[tools.web_fetch]`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{WebConfigError, at_least, positive_secs, user_agent};
use crate::net::{Cidr, NetworkGuard};

/// Ports `web_fetch` may reach on public addresses unless configured otherwise.
pub const DEFAULT_FETCH_PORTS: [u16; 2] = [80, 443];

/// The largest `max_bytes` the configuration accepts (64 MiB).
const MAX_BODY_CEILING: usize = 64 * 1024 * 1024;

/// `[tools.web_fetch]`: fetching one page for the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebFetchConfig {
    /// Address ranges the tool may reach although they are not public, as CIDR
    /// (`10.20.0.0/16`, `fd00::/8`) or single addresses (`192.168.1.10`). Default: none, so
    /// loopback, private, link-local, metadata and other non-public addresses are refused.
    pub allow: Vec<String>,
    /// Ports the tool may reach on public addresses. Allowlisted (non-public) addresses may
    /// be reached on any port. Default: `[80, 443]`.
    pub ports: Vec<u16>,
    /// Most bytes of a response body read, in bytes; a call's `max_bytes` may ask for less,
    /// never more. At most 64 MiB. Default: 2 MiB (2097152).
    pub max_bytes: usize,
    /// Time limit of one fetch (connecting, every redirect and reading the body), in seconds;
    /// the time left for the tool call bounds it too. Default: 20.
    pub timeout_secs: u64,
    /// Time limit to connect (TCP and TLS) to one address, in seconds. Default: 10.
    pub connect_timeout_secs: u64,
    /// Redirects followed at most (each one checked like the first URL). Default: 5.
    pub max_redirects: u32,
    /// Bytes of text given back to the model; longer text is cut with a note. Default: 64 KiB
    /// (65536).
    pub max_text_bytes: usize,
    /// The `User-Agent` header. Default: `Nexus/<version> (+web_fetch)`.
    pub user_agent: String,
}

impl Default for WebFetchConfig {
    fn default() -> Self {
        WebFetchConfig {
            allow: Vec::new(),
            ports: DEFAULT_FETCH_PORTS.to_vec(),
            max_bytes: 2 * 1024 * 1024,
            timeout_secs: 20,
            connect_timeout_secs: 10,
            max_redirects: 5,
            max_text_bytes: 64 * 1024,
            user_agent: user_agent("web_fetch"),
        }
    }
}

/// `web_fetch` settings after validation.
#[derive(Debug, Clone)]
pub(crate) struct FetchSettings {
    pub(crate) allow: Vec<Cidr>,
    pub(crate) max_bytes: usize,
    pub(crate) timeout: Duration,
    pub(crate) max_text_bytes: usize,
}

impl WebFetchConfig {
    /// The allowlisted ranges, parsed.
    pub fn allow_ranges(&self) -> Result<Vec<Cidr>, WebConfigError> {
        self.allow
            .iter()
            .map(|s| {
                s.parse::<Cidr>().map_err(|e| WebConfigError::Invalid {
                    key: "tools.web_fetch.allow",
                    value: s.clone(),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// The guard this configuration describes: public addresses plus [`allow`](Self::allow).
    pub fn network_guard(&self) -> Result<NetworkGuard, WebConfigError> {
        Ok(NetworkGuard::allowing(self.allow_ranges()?))
    }

    pub(crate) fn settings(&self) -> Result<FetchSettings, WebConfigError> {
        if self.max_bytes == 0 || self.max_bytes > MAX_BODY_CEILING {
            return Err(WebConfigError::OutOfRange {
                key: "tools.web_fetch.max_bytes",
                value: self.max_bytes.to_string(),
                expected: "1 to 67108864 bytes",
            });
        }
        Ok(FetchSettings {
            allow: self.allow_ranges()?,
            max_bytes: self.max_bytes,
            timeout: positive_secs("tools.web_fetch.timeout_secs", self.timeout_secs)?,
            max_text_bytes: at_least(
                "tools.web_fetch.max_text_bytes",
                self.max_text_bytes,
                256,
                "at least 256 bytes",
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_defaults_are_the_documented_ones() {
        let config: WebFetchConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, WebFetchConfig::default());
        assert_eq!(config.ports, vec![80, 443]);
        assert_eq!(config.max_bytes, 2 * 1024 * 1024);
        assert_eq!(config.max_text_bytes, 65536);
        assert!(config.user_agent.starts_with("Nexus/"));
        assert!(config.user_agent.ends_with("(+web_fetch)"));
        assert!(config.settings().is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_ranges_are_refused_with_the_key() {
        assert!(serde_json::from_str::<WebFetchConfig>(r#"{"alow": []}"#).is_err());
        let config = WebFetchConfig {
            allow: vec!["10.0.0.0/33".to_owned()],
            ..WebFetchConfig::default()
        };
        let err = config.settings().unwrap_err();
        assert!(err.to_string().contains("tools.web_fetch.allow"), "{err}");
        let config = WebFetchConfig {
            timeout_secs: 0,
            ..WebFetchConfig::default()
        };
        let err = config.settings().unwrap_err();
        assert!(err.to_string().contains("timeout_secs"), "{err}");
    }
}
