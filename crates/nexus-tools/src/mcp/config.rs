//! The configuration of one MCP server ([`McpServerConfig`], what operators write) and its
//! validated form ([`McpServerSettings`], what [`super::McpServer::start`] accepts).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::names::{MAX_SERVER_NAME, check_server_name};

/// One MCP server, as configured (`[[tools.mcp.servers]]`). Either `command` (a child process
/// speaking MCP on its stdin/stdout) or `url` (a streamable-HTTP endpoint), never both.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpServerConfig {
    /// The server's name: the prefix of its tools (`{name}__{tool}`) and of the agent entry
    /// `mcp:{name}`. Lower-case letters, digits, `-` and `_`, at most 32 characters, no `__`.
    /// Required.
    pub name: String,
    /// Stdio: the program to run (looked up in `PATH` when it has no `/`).
    pub command: Option<String>,
    /// Stdio: its arguments. Default none.
    pub args: Vec<String>,
    /// Stdio: environment variables given to it, on top of `HOME`, `LOGNAME`, `PATH`, `SHELL`,
    /// `TERM`, `USER`, `LANG`, `LC_ALL`, `TMPDIR` and `TZ` taken from the server's own
    /// environment (nothing else is inherited). Values are secrets: never logged. Default none.
    pub env: BTreeMap<String, SecretString>,
    /// Stdio: its working directory. Default: the server's.
    pub cwd: Option<PathBuf>,
    /// Streamable HTTP: the endpoint, `http://` or `https://`.
    pub url: Option<String>,
    /// Streamable HTTP: headers sent with every request. Values are secrets: never logged.
    /// Default none.
    pub headers: BTreeMap<String, SecretString>,
    /// Streamable HTTP: an OAuth access token sent as `Authorization: Bearer <token>`.
    /// Default none.
    pub bearer_token: Option<SecretString>,
    /// Seconds to start the server and complete the handshake and the first `tools/list`.
    /// Default 30.
    pub startup_timeout_secs: u64,
    /// Seconds one tool call may run (the turn's own deadline may be shorter). Default 60.
    pub call_timeout_secs: u64,
    /// Seconds before the first restart of a server that failed; doubles on each failure in a
    /// row. Default 1.
    pub restart_backoff_min_secs: u64,
    /// Longest wait between restarts, in seconds. Default 60.
    pub restart_backoff_max_secs: u64,
    /// Streamable HTTP: seconds between `ping`s while the server is idle, so a server that
    /// went away is noticed (and its tools withdrawn) before a call runs into it; `0` turns
    /// them off. Default 30. (A stdio server's exit is seen at once.)
    pub health_check_secs: Option<u64>,
}

impl Default for McpServerConfig {
    fn default() -> Self {
        McpServerConfig {
            name: String::new(),
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            url: None,
            headers: BTreeMap::new(),
            bearer_token: None,
            startup_timeout_secs: 30,
            call_timeout_secs: 60,
            restart_backoff_min_secs: 1,
            restart_backoff_max_secs: 60,
            health_check_secs: None,
        }
    }
}

/// Lists the keys of a secret map: the values never reach `Debug`.
struct Keys<'a>(&'a BTreeMap<String, SecretString>);

impl fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "[redacted]")))
            .finish()
    }
}

impl fmt::Debug for McpServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpServerConfig")
            .field("name", &self.name)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &Keys(&self.env))
            .field("cwd", &self.cwd)
            .field("url", &self.url)
            .field("headers", &Keys(&self.headers))
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "[redacted]"),
            )
            .field("startup_timeout_secs", &self.startup_timeout_secs)
            .field("call_timeout_secs", &self.call_timeout_secs)
            .field("restart_backoff_min_secs", &self.restart_backoff_min_secs)
            .field("restart_backoff_max_secs", &self.restart_backoff_max_secs)
            .field("health_check_secs", &self.health_check_secs)
            .finish()
    }
}

/// A configuration that cannot be used, naming the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum McpConfigError {
    /// `name` is empty, too long, has characters outside `[a-z0-9_-]` or contains `__`.
    #[error(
        "MCP server name `{name}` is invalid: use 1 to {MAX_SERVER_NAME} lower-case letters, digits, `-` or `_`, without `__` ({reason})"
    )]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Neither `command` nor `url` is set.
    #[error(
        "MCP server `{name}`: set `command` (a program speaking MCP on stdio) or `url` (a streamable-HTTP endpoint)"
    )]
    NoTransport {
        /// The server.
        name: String,
    },
    /// Both `command` and `url` are set.
    #[error("MCP server `{name}`: set either `command` or `url`, not both")]
    BothTransports {
        /// The server.
        name: String,
    },
    /// A key of the other transport is set (`args`, `env`, `cwd` need `command`; `headers`,
    /// `bearer_token` need `url`).
    #[error("MCP server `{name}`: `{key}` applies only to servers with `{needs}`")]
    MisplacedKey {
        /// The server.
        name: String,
        /// The key that does not apply.
        key: &'static str,
        /// The key it needs.
        needs: &'static str,
    },
    /// `command` is empty.
    #[error("MCP server `{name}`: `command` is empty")]
    EmptyCommand {
        /// The server.
        name: String,
    },
    /// `url` does not parse or is not `http(s)://`.
    #[error("MCP server `{name}`: `url` {reason}")]
    InvalidUrl {
        /// The server.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A header name or value is not valid HTTP, or is one the MCP transport sets itself.
    #[error("MCP server `{name}`: header `{header}` {reason}")]
    InvalidHeader {
        /// The server.
        name: String,
        /// The header.
        header: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A duration is zero, or the backoff minimum is above its maximum.
    #[error("MCP server `{name}`: `{key}` {reason}")]
    InvalidDuration {
        /// The server.
        name: String,
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// How to reach a server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum McpTransport {
    /// A child process speaking MCP on its stdin and stdout.
    Stdio(StdioSettings),
    /// A streamable-HTTP endpoint.
    Http(HttpSettings),
}

/// A child process: program, arguments, extra environment, working directory.
#[derive(Clone)]
pub struct StdioSettings {
    pub(crate) command: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: BTreeMap<String, SecretString>,
    pub(crate) cwd: Option<PathBuf>,
}

impl fmt::Debug for StdioSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdioSettings")
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &Keys(&self.env))
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl StdioSettings {
    /// The program.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Its arguments.
    pub fn args(&self) -> &[String] {
        &self.args
    }
}

/// An endpoint and the headers sent to it (values marked sensitive: `Debug` redacts them).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub(crate) url: Url,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
}

impl HttpSettings {
    /// The endpoint.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

/// A validated MCP server configuration.
#[derive(Debug, Clone)]
pub struct McpServerSettings {
    pub(crate) name: String,
    pub(crate) transport: McpTransport,
    pub(crate) startup_timeout: Duration,
    pub(crate) call_timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    /// HTTP: the interval of health pings, when on.
    pub(crate) health_check: Option<Duration>,
}

impl McpServerSettings {
    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the server is reached.
    pub fn transport(&self) -> &McpTransport {
        &self.transport
    }
}

/// Headers the MCP transport sets itself.
const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];

impl TryFrom<McpServerConfig> for McpServerSettings {
    type Error = McpConfigError;

    fn try_from(c: McpServerConfig) -> Result<Self, Self::Error> {
        let name = c.name;
        if let Err(reason) = check_server_name(&name) {
            return Err(McpConfigError::InvalidName { name, reason });
        }
        let duration = |key: &'static str, secs: u64| {
            if secs == 0 {
                return Err(McpConfigError::InvalidDuration {
                    name: name.clone(),
                    key,
                    reason: "must be at least 1",
                });
            }
            Ok(Duration::from_secs(secs))
        };
        let startup_timeout = duration("startup_timeout_secs", c.startup_timeout_secs)?;
        let call_timeout = duration("call_timeout_secs", c.call_timeout_secs)?;
        let backoff_min = duration("restart_backoff_min_secs", c.restart_backoff_min_secs)?;
        let backoff_max = duration("restart_backoff_max_secs", c.restart_backoff_max_secs)?;
        if backoff_min > backoff_max {
            return Err(McpConfigError::InvalidDuration {
                name,
                key: "restart_backoff_min_secs",
                reason: "is above `restart_backoff_max_secs`",
            });
        }
        let misplaced = |key, needs| McpConfigError::MisplacedKey {
            name: name.clone(),
            key,
            needs,
        };
        let transport = match (c.command, c.url) {
            (Some(_), Some(_)) => return Err(McpConfigError::BothTransports { name }),
            (None, None) => return Err(McpConfigError::NoTransport { name }),
            (Some(command), None) => {
                if !c.headers.is_empty() {
                    return Err(misplaced("headers", "url"));
                }
                if c.bearer_token.is_some() {
                    return Err(misplaced("bearer_token", "url"));
                }
                if c.health_check_secs.is_some() {
                    return Err(misplaced("health_check_secs", "url"));
                }
                if command.trim().is_empty() {
                    return Err(McpConfigError::EmptyCommand { name });
                }
                McpTransport::Stdio(StdioSettings {
                    command,
                    args: c.args,
                    env: c.env,
                    cwd: c.cwd,
                })
            }
            (None, Some(url)) => {
                if !c.args.is_empty() {
                    return Err(misplaced("args", "command"));
                }
                if !c.env.is_empty() {
                    return Err(misplaced("env", "command"));
                }
                if c.cwd.is_some() {
                    return Err(misplaced("cwd", "command"));
                }
                let url = parse_url(&name, &url)?;
                let headers = http_headers(&name, &c.headers, c.bearer_token.as_ref())?;
                McpTransport::Http(HttpSettings { url, headers })
            }
        };
        let health_check = match (&transport, c.health_check_secs.unwrap_or(30)) {
            (McpTransport::Http(_), secs) if secs > 0 => Some(Duration::from_secs(secs)),
            _ => None,
        };
        Ok(McpServerSettings {
            name,
            transport,
            health_check,
            startup_timeout,
            call_timeout,
            backoff_min,
            backoff_max,
        })
    }
}

fn parse_url(name: &str, url: &str) -> Result<Url, McpConfigError> {
    let invalid = |reason: String| McpConfigError::InvalidUrl {
        name: name.to_owned(),
        reason,
    };
    let parsed = Url::parse(url).map_err(|e| invalid(format!("is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "must start with http:// or https://, not {}://",
            parsed.scheme()
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "must not carry credentials: use `headers` or `bearer_token`".to_owned(),
        ));
    }
    Ok(parsed)
}

fn http_headers(
    name: &str,
    headers: &BTreeMap<String, SecretString>,
    bearer: Option<&SecretString>,
) -> Result<Vec<(HeaderName, HeaderValue)>, McpConfigError> {
    let invalid = |header: &str, reason| McpConfigError::InvalidHeader {
        name: name.to_owned(),
        header: header.to_owned(),
        reason,
    };
    let mut out = Vec::with_capacity(headers.len() + 1);
    for (key, value) in headers {
        let header = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| invalid(key, "is not a valid header name"))?;
        if RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(invalid(key, "is set by the MCP transport itself"));
        }
        if header == reqwest::header::AUTHORIZATION && bearer.is_some() {
            return Err(invalid(
                key,
                "conflicts with `bearer_token`: set one of them",
            ));
        }
        let mut value = HeaderValue::from_str(value.expose_secret())
            .map_err(|_| invalid(key, "has a value that is not valid in HTTP"))?;
        value.set_sensitive(true);
        out.push((header, value));
    }
    if let Some(token) = bearer {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| invalid("bearer_token", "has characters not valid in HTTP"))?;
        value.set_sensitive(true);
        out.push((reqwest::header::AUTHORIZATION, value));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
