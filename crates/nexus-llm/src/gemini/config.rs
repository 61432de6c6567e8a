//! Configuration of the Gemini provider: key, base URL, timeouts, and reading them from the
//! environment. Validated here, then trusted by the client.

use std::time::Duration;

use nexus_core::llm::LlmError;
use secrecy::SecretString;
use url::Url;

use crate::error::ConfigError;

/// The public API's base URL (the Generative Language API, version `v1beta`).
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
/// The environment variable holding the API key.
pub const API_KEY_ENV: &str = "GEMINI_API_KEY";
/// The variable read for the key when [`API_KEY_ENV`] is unset (Google's SDKs read both).
pub const FALLBACK_API_KEY_ENV: &str = "GOOGLE_API_KEY";
/// The environment variable overriding the base URL (e.g. a proxy or a fake).
pub const BASE_URL_ENV: &str = "GEMINI_BASE_URL";

/// How to reach the Gemini API. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct GeminiConfig {
    /// The API key, sent only as the `x-goog-api-key` header (never `?key=`, which ends up in
    /// access logs).
    pub api_key: SecretString,
    /// The API base, including the version segment. Default:
    /// `https://generativelanguage.googleapis.com/v1beta`.
    pub base_url: Url,
    /// Deadline of the TCP (and TLS) connection. Default: 10 s.
    pub connect_timeout: Duration,
    /// Deadline from sending the request to the first bytes of the answer's body (which
    /// includes the response headers). Thinking models may think a while before the first
    /// byte. Default: 120 s.
    pub first_byte_timeout: Duration,
    /// Longest silence between two reads of a streaming answer. Default: 60 s.
    pub idle_timeout: Duration,
}

impl GeminiConfig {
    /// A configuration for `api_key` with every other setting at its default.
    pub fn new(api_key: impl Into<String>) -> GeminiConfig {
        GeminiConfig {
            api_key: SecretString::from(api_key.into()),
            base_url: default_base_url(),
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
        }
    }

    /// Replaces the base URL, checking it (http or https, a host, no query or fragment).
    pub fn with_base_url(mut self, base_url: &str) -> Result<GeminiConfig, ConfigError> {
        self.base_url = parse_base_url(base_url).map_err(|reason| ConfigError::InvalidValue {
            field: "base_url",
            reason,
        })?;
        Ok(self)
    }

    /// Reads `GEMINI_API_KEY` (else `GOOGLE_API_KEY`) and `GEMINI_BASE_URL`. `Ok(None)` when
    /// no key is set (the provider is then simply not configured).
    pub fn from_env() -> Result<Option<GeminiConfig>, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any source of variables (tests, a config layer).
    /// Empty values count as unset.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<GeminiConfig>, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(key) = get(API_KEY_ENV).or_else(|| get(FALLBACK_API_KEY_ENV)) else {
            return Ok(None);
        };
        let mut config = GeminiConfig::new(key);
        if let Some(raw) = get(BASE_URL_ENV) {
            config.base_url = parse_base_url(&raw).map_err(|reason| ConfigError::InvalidEnv {
                var: BASE_URL_ENV,
                reason,
            })?;
        }
        Ok(Some(config))
    }

    /// `{base}/models/{model}:streamGenerateContent?alt=sse` (or `tunedModels/…` for a tuned
    /// model). The model may be given bare (`gemini-2.5-flash`) or as a resource name
    /// (`models/gemini-2.5-flash`, `tunedModels/my-model`).
    pub(crate) fn stream_url(&self, model: &str) -> Result<Url, LlmError> {
        let (collection, id) = model_resource(model)?;
        let mut url = self.base_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .push(collection)
                .push(&format!("{id}:streamGenerateContent"));
        }
        url.set_query(Some("alt=sse"));
        Ok(url)
    }
}

impl GeminiConfig {
    /// `{base}/models/{model}:batchEmbedContents`.
    pub(crate) fn batch_embed_url(&self, model: &str) -> Result<Url, LlmError> {
        let (collection, id) = model_resource(model)?;
        let mut url = self.base_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .push(collection)
                .push(&format!("{id}:batchEmbedContents"));
        }
        Ok(url)
    }

    /// The `models/…` resource name of `model`, as embedding requests repeat it.
    pub(crate) fn resource_name(model: &str) -> Result<String, LlmError> {
        let (collection, id) = model_resource(model)?;
        Ok(format!("{collection}/{id}"))
    }
}

/// Splits a model name into its collection (`models` or `tunedModels`) and id, refusing names
/// that would change the path.
fn model_resource(model: &str) -> Result<(&'static str, &str), LlmError> {
    let model = model.trim();
    let (collection, id) = match model.split_once('/') {
        None => ("models", model),
        Some(("models", id)) => ("models", id),
        Some(("tunedModels", id)) => ("tunedModels", id),
        Some(_) => ("", ""),
    };
    let valid = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if collection.is_empty() || !valid {
        return Err(LlmError::BadRequest {
            message: format!(
                "`{model}` is not a Gemini model name; expected e.g. `gemini-2.5-flash` or \
                 `models/gemini-2.5-flash`"
            ),
        });
    }
    Ok((collection, id))
}

fn default_base_url() -> Url {
    Url::parse(DEFAULT_BASE_URL).expect("the default base URL is a valid constant")
}

/// Checks a base URL: absolute http(s) with a host, no query or fragment.
fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|err| {
        format!(
            "`{raw}` is not a URL ({err}); expected e.g. \
             https://generativelanguage.googleapis.com/v1beta"
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{raw}` must start with http:// or https://"));
    }
    if url.host().is_none() || url.cannot_be_a_base() {
        return Err(format!("`{raw}` has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{raw}` must not have a query or fragment (the key goes in a header, not `?key=`)"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_key_wins_over_google_key_and_bad_url_names_the_variable() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(GeminiConfig::from_lookup(vars(&[])).unwrap().is_none());
        assert!(
            GeminiConfig::from_lookup(vars(&[("GEMINI_API_KEY", "  ")]))
                .unwrap()
                .is_none()
        );
        use secrecy::ExposeSecret;
        let both = GeminiConfig::from_lookup(vars(&[
            ("GEMINI_API_KEY", "gemini-key"),
            ("GOOGLE_API_KEY", "google-key"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(both.api_key.expose_secret(), "gemini-key");
        let google = GeminiConfig::from_lookup(vars(&[("GOOGLE_API_KEY", "google-key")]))
            .unwrap()
            .unwrap();
        assert_eq!(google.api_key.expose_secret(), "google-key");
        assert_eq!(
            google.base_url.as_str(),
            "https://generativelanguage.googleapis.com/v1beta"
        );
        let err = GeminiConfig::from_lookup(vars(&[
            ("GEMINI_API_KEY", "k"),
            ("GEMINI_BASE_URL", "https://example.com/v1beta?key=leak"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("GEMINI_BASE_URL"), "{err}");
    }

    #[test]
    fn model_names_map_to_resource_paths_and_odd_ones_are_refused() {
        for base in ["http://127.0.0.1:9/v1beta", "http://127.0.0.1:9/v1beta/"] {
            let config = GeminiConfig::new("k").with_base_url(base).unwrap();
            for (model, path) in [
                ("gemini-2.5-flash", "models/gemini-2.5-flash"),
                ("models/gemini-2.5-pro", "models/gemini-2.5-pro"),
                ("tunedModels/my-model-1", "tunedModels/my-model-1"),
            ] {
                assert_eq!(
                    config.stream_url(model).unwrap().as_str(),
                    format!("http://127.0.0.1:9/v1beta/{path}:streamGenerateContent?alt=sse")
                );
            }
            for bad in [
                "",
                "../admin",
                "gemini?key=x",
                "files/abc",
                "a/b/c",
                "gemini 2",
            ] {
                assert!(
                    matches!(config.stream_url(bad), Err(LlmError::BadRequest { .. })),
                    "{bad}"
                );
            }
        }
    }
}
