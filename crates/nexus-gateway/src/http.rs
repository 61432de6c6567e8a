//! HTTP endpoints: `/healthz` (the process runs), `/readyz` (database reachable, migrations
//! applied), `/metrics` (Prometheus text), and `GET /v1/blobs/{key}?expires=…&sig=…` (signed,
//! time-limited download links of object storage), and `POST /channels/{id}/webhook` (events
//! platforms push: Telegram webhook mode, the Slack Events API; the channel's adapter checks
//! the signature or secret and answers).
//!
//! Each handler gets only the state it uses (axum `FromRef` substates).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use nexus_core::{ChannelCredentialId, ChannelError, WebhookRequest};

use crate::channels::ChannelService;
use chrono::Utc;
use nexus_store::blob::{BlobStore, LinkError, LinkQuery, LinkSigner};
use nexus_store::{Store, StoreError};
use prometheus_client::registry::Registry;
use serde_json::json;
use tracing::{error, warn};

/// State of the readiness check.
#[derive(Clone, Debug)]
pub struct HealthState {
    store: Arc<dyn Store>,
}

/// State of the metrics endpoint.
#[derive(Clone, Debug)]
pub struct MetricsState {
    registry: Arc<Registry>,
}

/// State of the download endpoint.
#[derive(Clone, Debug)]
pub struct BlobState {
    blobs: Arc<BlobStore>,
    signer: Arc<LinkSigner>,
}

/// State of the channel webhook endpoint.
#[derive(Clone, Debug)]
pub struct WebhookState {
    channels: ChannelService,
}

/// Everything the router holds; handlers extract their part.
#[derive(Clone, Debug)]
pub struct HttpState {
    health: HealthState,
    metrics: MetricsState,
    blobs: BlobState,
    webhooks: WebhookState,
}

impl FromRef<HttpState> for WebhookState {
    fn from_ref(s: &HttpState) -> Self {
        s.webhooks.clone()
    }
}

impl FromRef<HttpState> for HealthState {
    fn from_ref(s: &HttpState) -> Self {
        s.health.clone()
    }
}

impl FromRef<HttpState> for MetricsState {
    fn from_ref(s: &HttpState) -> Self {
        s.metrics.clone()
    }
}

impl FromRef<HttpState> for BlobState {
    fn from_ref(s: &HttpState) -> Self {
        s.blobs.clone()
    }
}

/// The HTTP router.
pub fn router(
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    blobs: Arc<BlobStore>,
    signer: Arc<LinkSigner>,
    channels: ChannelService,
) -> Router {
    let state = HttpState {
        health: HealthState { store },
        metrics: MetricsState { registry },
        blobs: BlobState { blobs, signer },
        webhooks: WebhookState { channels },
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/blobs/{*key}", get(download))
        .route(
            "/channels/{id}/webhook",
            post(webhook).layer(axum::extract::DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
        )
        .with_state(state)
}

/// Largest webhook body read (Telegram updates and Slack events are a few kilobytes).
const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

async fn webhook(
    State(s): State<WebhookState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<uuid::Uuid>().map(ChannelCredentialId::from) else {
        return (StatusCode::NOT_FOUND, "no such channel\n").into_response();
    };
    let Some(adapter) = s.channels.adapter(id) else {
        return (StatusCode::NOT_FOUND, "no such channel\n").into_response();
    };
    let request = WebhookRequest {
        headers: headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect(),
        body: body.to_vec(),
    };
    match adapter.webhook(request).await {
        Ok(answer) => {
            let status =
                StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut headers = HeaderMap::new();
            if let Some(ct) = answer
                .content_type
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                headers.insert(header::CONTENT_TYPE, ct);
            }
            for (name, value) in &answer.headers {
                if let (Ok(n), Ok(v)) = (
                    header::HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) {
                    headers.insert(n, v);
                }
            }
            (status, headers, answer.body).into_response()
        }
        Err(ChannelError::Unsupported { .. }) => (
            StatusCode::NOT_FOUND,
            "this channel does not receive webhooks\n",
        )
            .into_response(),
        Err(err) => {
            warn!(channel_id = %id, error = %err, "Webhook handling failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "webhook failed\n").into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<HealthState>) -> Response {
    if let Err(err) = s.store.ping().await {
        warn!(error = %err, "Readiness: database unreachable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"ready": false, "reason": "database unreachable"})),
        )
            .into_response();
    }
    match s.store.migration_status().await {
        Ok(status) if status.is_current() => axum::Json(json!({"ready": true})).into_response(),
        Ok(status) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({
                "ready": false,
                "reason": "migrations pending; run `nexus migrate`",
                "pending": status.pending,
            })),
        )
            .into_response(),
        Err(err) => {
            warn!(error = %err, "Readiness: migration status unknown");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"ready": false, "reason": "migration status unknown"})),
            )
                .into_response()
        }
    }
}

async fn metrics(State(s): State<MetricsState>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(err) => {
            error!(error = %err, "Could not encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn download(
    State(s): State<BlobState>,
    Path(key): Path<String>,
    Query(query): Query<LinkQuery>,
) -> Response {
    match s.signer.verify_query(&key, &query, Utc::now()) {
        Ok(()) => {}
        Err(LinkError::Expired) => {
            return (StatusCode::FORBIDDEN, "this download link has expired\n").into_response();
        }
        Err(_) => {
            return (StatusCode::FORBIDDEN, "invalid download link\n").into_response();
        }
    }
    let blob = match s.blobs.get(&key).await {
        Ok(blob) => blob,
        Err(
            StoreError::NotFound { .. } | StoreError::Blob(object_store::Error::NotFound { .. }),
        ) => {
            return (StatusCode::NOT_FOUND, "no such object\n").into_response();
        }
        Err(err) => {
            error!(error = %err, "Could not read a blob for download");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not read the object\n",
            )
                .into_response();
        }
    };
    let mut headers = HeaderMap::new();
    let content_type = HeaderValue::from_str(&blob.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=60"),
    );
    let filename: String = blob
        .filename
        .as_deref()
        .unwrap_or("download")
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\' || *c == ' ')
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    (headers, blob.bytes).into_response()
}
