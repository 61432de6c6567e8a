//! [`GuardedClient`]: HTTP GET that only reaches addresses the [`NetworkGuard`] allows.
//!
//! Every hop (the first URL and each redirect target) is checked before its request:
//! - the scheme is `http` or `https`;
//! - an IP-literal host (`127.0.0.1`, `[::1]`, and the forms the URL parser normalises to them:
//!   `0x7f000001`, `2130706433`, `127.1`) is checked against the guard here, since hyper does
//!   not resolve it;
//! - a name is resolved at connection time by the guarded resolver, which refuses it when any
//!   of its addresses is refused and otherwise hands hyper only the checked addresses;
//! - the port must be one of `ports` (default 80 and 443) on a public address; non-public
//!   addresses that the guard lets through (the operator allowlisted them) may use any port.
//!   For a name on another port the name is resolved first to apply this rule.
//!
//! Redirects are followed here (reqwest's policy is `none`), at most `max_redirects`. After a
//! response arrives, the peer address the connection actually used is checked again. Proxies
//! from the environment are ignored.
//!
//! Known limit: for a name on a non-listed port, the port rule uses the first resolution and
//! the connection a second one (through the guard); a name that changes its answer in between
//! could reach a public address on a non-listed port, never a refused one.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, HeaderMap, HeaderValue, LOCATION};
use url::{Host, Url};

use super::config::{DEFAULT_FETCH_PORTS, WebConfigError, user_agent};
use super::lazy::LazyHttp;
use super::refusal::FetchError;
use super::resolver::GuardedResolver;
use crate::net::{NetworkGuard, classify};

/// How a [`GuardedClient`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedClientOptions {
    /// The `User-Agent` header. Default: `Nexus/<version> (+web_fetch)`.
    pub user_agent: String,
    /// Time limit to connect (TCP and TLS) to one address. Default: 10 s.
    pub connect_timeout: Duration,
    /// Redirects followed at most. Default: 5.
    pub max_redirects: u32,
    /// Ports allowed on public addresses. Default: 80 and 443.
    pub ports: Vec<u16>,
    /// The configuration key refusals name for allowlisting ranges. Default:
    /// `tools.web_fetch.allow`.
    pub allow_key: String,
    /// The configuration key refusals name for allowing ports. Default:
    /// `tools.web_fetch.ports`.
    pub ports_key: String,
}

impl Default for GuardedClientOptions {
    fn default() -> Self {
        GuardedClientOptions {
            user_agent: user_agent("web_fetch"),
            connect_timeout: Duration::from_secs(10),
            max_redirects: 5,
            ports: DEFAULT_FETCH_PORTS.to_vec(),
            allow_key: "tools.web_fetch.allow".to_owned(),
            ports_key: "tools.web_fetch.ports".to_owned(),
        }
    }
}

/// A response, after redirects.
#[derive(Debug)]
pub struct Fetched {
    /// The URL that answered (the last redirect target).
    pub url: Url,
    /// Redirects followed.
    pub redirects: u32,
    /// The response; its body is not read yet.
    pub response: reqwest::Response,
}

/// An HTTP client for URLs that come from the model. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GuardedClient {
    http: LazyHttp,
    guard: NetworkGuard,
    options: Arc<GuardedClientOptions>,
}

impl GuardedClient {
    /// A client that reaches what `guard` allows.
    pub fn new(guard: NetworkGuard, options: GuardedClientOptions) -> Result<Self, WebConfigError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static(
                "text/html,application/xhtml+xml,text/plain;q=0.9,application/json;q=0.9,\
                 application/xml;q=0.8,*/*;q=0.5",
            ),
        );
        let user_agent =
            HeaderValue::from_str(&options.user_agent).map_err(|e| WebConfigError::Invalid {
                key: "tools.web_fetch.user_agent",
                value: options.user_agent.clone(),
                message: e.to_string(),
            })?;
        let (resolver, connect_timeout) =
            (GuardedResolver::new(guard.clone()), options.connect_timeout);
        let http = LazyHttp::new(move || {
            reqwest::Client::builder()
                .dns_resolver(resolver.clone())
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .user_agent(user_agent.clone())
                .default_headers(headers.clone())
                .connect_timeout(connect_timeout)
                .tcp_nodelay(true)
                .build()
        });
        Ok(GuardedClient {
            http,
            guard,
            options: Arc::new(options),
        })
    }

    /// The guard in force.
    pub fn guard(&self) -> &NetworkGuard {
        &self.guard
    }

    /// GETs `url`, following redirects; every hop is checked before its request. The caller
    /// bounds the time (wrap the call and the body reading in a timeout).
    pub async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let mut url = Url::parse(url.trim()).map_err(|e| FetchError::BadUrl {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
        let mut from: Option<Url> = None;
        let mut redirects = 0u32;
        loop {
            self.check(&url, from.as_ref()).await?;
            let http = self.http.client().map_err(|e| FetchError::Transport {
                url: url.to_string(),
                message: format!(
                    "cannot build the HTTP client: {}",
                    super::refusal::chain(&e)
                ),
            })?;
            let response = http.get(url.clone()).send().await.map_err(|e| {
                FetchError::from_reqwest(
                    &e,
                    &url,
                    from.as_ref(),
                    &self.options.allow_key,
                    self.options.connect_timeout,
                )
            })?;
            if let Some(peer) = response.remote_addr() {
                self.check_peer(&url, peer, from.as_ref())?;
            }
            let status = response.status().as_u16();
            let location = match status {
                301 | 302 | 303 | 307 | 308 => response.headers().get(LOCATION),
                _ => None,
            };
            let Some(location) = location else {
                return Ok(Fetched {
                    url,
                    redirects,
                    response,
                });
            };
            let bad = || FetchError::BadRedirect {
                url: url.to_string(),
                status,
                location: String::from_utf8_lossy(location.as_bytes()).into_owned(),
            };
            let next = location
                .to_str()
                .ok()
                .and_then(|l| url.join(l).ok())
                .ok_or_else(bad)?;
            if redirects >= self.options.max_redirects {
                return Err(FetchError::TooManyRedirects {
                    max: self.options.max_redirects,
                    last: next.to_string(),
                });
            }
            redirects += 1;
            tracing::debug!(from = %url, to = %next, status, "Following a redirect");
            from = Some(std::mem::replace(&mut url, next));
        }
    }

    /// Checks one hop before its request.
    async fn check(&self, url: &Url, from: Option<&Url>) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Scheme {
                url: url.to_string(),
                scheme: url.scheme().to_owned(),
            });
        }
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return Err(FetchError::BadUrl {
                url: url.to_string(),
                message: "no host".to_owned(),
            });
        };
        let name = host.to_string();
        match host {
            Host::Ipv4(v4) => self.check_addr(&name, IpAddr::V4(v4), port, from),
            Host::Ipv6(v6) => self.check_addr(&name, IpAddr::V6(v6), port, from),
            // The resolver checks names at connection time; only the port rule needs the
            // addresses now, when the port is not one allowed everywhere.
            Host::Domain(_) if self.options.ports.contains(&port) => Ok(()),
            Host::Domain(domain) => {
                let addrs = self
                    .guard
                    .resolve(domain, port)
                    .await
                    .map_err(|e| FetchError::from_guard(e, from, &self.options.allow_key))?;
                addrs
                    .iter()
                    .try_for_each(|a| self.check_port(&name, a.ip(), port))
            }
        }
    }

    /// Checks the address a connection actually used.
    fn check_peer(
        &self,
        url: &Url,
        peer: SocketAddr,
        from: Option<&Url>,
    ) -> Result<(), FetchError> {
        let name = url.host_str().unwrap_or_default();
        self.check_addr(name, peer.ip(), peer.port(), from)
    }

    fn check_addr(
        &self,
        host: &str,
        ip: IpAddr,
        port: u16,
        from: Option<&Url>,
    ) -> Result<(), FetchError> {
        self.guard.check(ip).map_err(|reason| FetchError::Refused {
            host: host.to_owned(),
            addr: ip,
            reason,
            redirected_from: from.map(Url::to_string),
            allow_key: self.options.allow_key.clone(),
        })?;
        self.check_port(host, ip, port)
    }

    /// Listed ports anywhere; any port on a non-public address the guard let through (it is
    /// allowlisted).
    fn check_port(&self, host: &str, ip: IpAddr, port: u16) -> Result<(), FetchError> {
        if self.options.ports.contains(&port) || classify(ip).is_some() {
            return Ok(());
        }
        let allowed: Vec<String> = self.options.ports.iter().map(u16::to_string).collect();
        Err(FetchError::Port {
            host: host.to_owned(),
            port,
            allowed: if allowed.is_empty() {
                "(none)".to_owned()
            } else {
                allowed.join(", ")
            },
            ports_key: self.options.ports_key.clone(),
        })
    }
}
