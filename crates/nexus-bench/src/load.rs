//! The load: chat turns over gRPC, one client sequentially, then many sessions at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nexus_gateway::pb;
use nexus_gateway::pb::chat_event::Event;
use nexus_gateway::pb::gateway_client::GatewayClient;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::stats::Samples;

/// Where and as whom to chat.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    url: String,
    auth: MetadataValue<tonic::metadata::Ascii>,
    agent: String,
}

impl Target {
    pub(crate) fn new(url: String, key: String, agent: String) -> Self {
        let auth = format!("Bearer {key}")
            .parse()
            .unwrap_or_else(|_| MetadataValue::from_static("Bearer invalid"));
        Target { url, auth, agent }
    }

    async fn channel(&self) -> anyhow::Result<Channel> {
        Endpoint::from_shared(self.url.clone())?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("cannot connect to {}", self.url))
    }
}

/// One measured turn.
struct Turn {
    latency: Duration,
    first_token: Option<Duration>,
    session_id: String,
}

async fn turn(
    client: &mut GatewayClient<Channel>,
    target: &Target,
    session_id: &str,
    text: &str,
) -> anyhow::Result<Turn> {
    let mut request = tonic::Request::new(pb::ChatRequest {
        agent: target.agent.clone(),
        session_id: session_id.to_owned(),
        text: text.to_owned(),
        client_message_id: String::new(),
    });
    request
        .metadata_mut()
        .insert("authorization", target.auth.clone());
    let started = Instant::now();
    let mut stream = client.chat(request).await?.into_inner();
    let mut first_token = None;
    while let Some(event) = stream.message().await? {
        match event.event {
            Some(Event::TextDelta(_)) if first_token.is_none() => {
                first_token = Some(started.elapsed());
            }
            Some(Event::Done(done)) => {
                return Ok(Turn {
                    latency: started.elapsed(),
                    first_token,
                    session_id: done.session_id,
                });
            }
            Some(Event::Error(err)) => bail!("turn failed: {} ({})", err.message, err.kind),
            _ => {}
        }
    }
    bail!("stream ended without done")
}

/// Figures of one phase.
#[derive(Debug)]
pub(crate) struct LoadReport {
    turns: usize,
    errors: usize,
    elapsed: Duration,
    latency: Samples,
    first_token: Samples,
}

impl LoadReport {
    /// Turns that completed.
    pub(crate) fn turns(&self) -> usize {
        self.turns
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "turns": self.turns,
            "errors": self.errors,
            "turns_per_sec": self.turns as f64 / self.elapsed.as_secs_f64(),
            "latency_p50_ms": self.latency.percentile_ms(50.0),
            "latency_p90_ms": self.latency.percentile_ms(90.0),
            "latency_p99_ms": self.latency.percentile_ms(99.0),
            "ttft_p50_ms": self.first_token.percentile_ms(50.0),
            "ttft_p99_ms": self.first_token.percentile_ms(99.0),
        })
    }
}

/// `n` turns in one session, one after another.
pub(crate) async fn sequential(target: &Target, n: usize) -> anyhow::Result<LoadReport> {
    let mut client = GatewayClient::new(target.channel().await?);
    let started = Instant::now();
    let mut session = String::new();
    let (mut latency, mut ttft) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut errors = 0;
    for i in 0..n {
        match turn(&mut client, target, &session, &format!("message {i}")).await {
            Ok(t) => {
                latency.push(t.latency);
                ttft.extend(t.first_token);
                session = t.session_id;
            }
            Err(err) => {
                errors += 1;
                if errors == 1 {
                    eprintln!("first error: {err:#}");
                }
            }
        }
    }
    Ok(LoadReport {
        turns: latency.len(),
        errors,
        elapsed: started.elapsed(),
        latency: Samples::from(latency),
        first_token: Samples::from(ttft),
    })
}

/// `sessions` clients, each in its own session, chatting back to back for `duration`.
pub(crate) async fn concurrent(
    target: &Target,
    sessions: usize,
    duration: Duration,
) -> anyhow::Result<LoadReport> {
    // A few HTTP/2 connections shared by the sessions, as a gateway of clients would look.
    let connections = sessions.clamp(1, 4);
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        channels.push(target.channel().await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let mut client = GatewayClient::new(channels[i % connections].clone());
        let target = target.clone();
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let (mut latency, mut ttft, mut errors) = (Vec::new(), Vec::new(), 0usize);
            let mut session = String::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                match turn(&mut client, &target, &session, &format!("s{i} m{n}")).await {
                    Ok(t) => {
                        latency.push(t.latency);
                        ttft.extend(t.first_token);
                        session = t.session_id;
                    }
                    Err(_) => errors += 1,
                }
            }
            (latency, ttft, errors)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let (mut latency, mut ttft, mut errors) = (Vec::new(), Vec::new(), 0);
    for task in tasks {
        let (l, t, e) = task.await.context("a load task panicked")?;
        latency.extend(l);
        ttft.extend(t);
        errors += e;
    }
    let elapsed = started.elapsed();
    Ok(LoadReport {
        turns: latency.len(),
        errors,
        elapsed,
        latency: Samples::from(latency),
        first_token: Samples::from(ttft),
    })
}
