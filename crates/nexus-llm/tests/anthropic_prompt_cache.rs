//! A 30-turn agent conversation against the fake Anthropic API, built turn by turn as the
//! runtime does (each request is the previous one plus the assistant's reply and the next user
//! message, tool calls and results included), checking that the provider's cache breakpoints
//! make the service read almost all input from its prompt cache.
//!
//! The fake accounts caching like the real service (prefixes at breakpoints, 20-block
//! lookback, 1024-token minimum, 5-minute TTL; tokens estimated as ceil(bytes / 4)).

use futures::StreamExt;
use nexus_llm::{
    AnthropicConfig, AnthropicProvider, ChatMessage, ChatRole, CompletionChunk, CompletionRequest,
    ContentBlock, LlmProvider, StopReason, ToolSpec, Usage,
};
use nexus_testkit::anthropic::Reply;
use nexus_testkit::{FakeAnthropic, FakeAnthropicConfig};
use serde_json::{Value, json};

const TURNS: usize = 30;

/// A system prompt of the size agents really carry (about 2,000 tokens).
fn system_prompt() -> String {
    let mut prompt = String::from(
        "You are Nexus, a careful and friendly assistant working for the operations team of a \
         mid-sized software company. You answer in the language of the user, in short \
         paragraphs, and you prefer concrete steps over general advice.\n\n\
         ## How you work\n\
         - Read the whole conversation before answering; never contradict an earlier answer \
         without saying why.\n\
         - When a question needs fresh facts (prices, releases, weather, incidents), use a tool \
         instead of guessing, and say which source you used.\n\
         - When a tool fails, explain what failed and what you will try next; never invent a \
         result.\n\
         - Keep secrets secret: never repeat API keys, passwords or tokens, even when the user \
         pastes them.\n\n\
         ## Formatting\n\
         Use Markdown. Put commands in fenced code blocks with the language named. Use tables \
         only for comparisons of three or more items. Keep answers under 300 words unless the \
         user asks for more.\n\n\
         ## Runbooks you know\n",
    );
    let services = [
        "billing-api",
        "search-indexer",
        "auth-gateway",
        "media-transcoder",
        "notifications",
        "reporting",
        "feature-flags",
        "audit-log",
    ];
    for (i, service) in services.iter().enumerate() {
        prompt.push_str(&format!(
            "### {service}\n\
             Owner: team {team}. Pager rotation: weekly, handover on Mondays at 09:00 UTC. \
             Health check: `curl -fsS https://{service}.internal/healthz`. Logs: \
             `kubectl logs -n prod deploy/{service} --since=15m`. Common failure: {failure}. \
             Mitigation: scale to {replicas} replicas with `kubectl scale -n prod \
             deploy/{service} --replicas={replicas}`, then check the error rate dashboard \
             before and after. Escalate to the owning team when the error rate stays above \
             {threshold}% for ten minutes.\n\n",
            team = i % 3 + 1,
            failure = [
                "connection pool exhaustion",
                "slow queries after a deploy",
                "expired TLS certificates"
            ][i % 3],
            replicas = 4 + i,
            threshold = 1 + i % 4,
        ));
    }
    prompt
}

fn schema(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

/// Eight tools with real-looking schemas (about 1,000 tokens).
fn tools() -> Vec<ToolSpec> {
    let string = |d: &str| json!({"type": "string", "description": d});
    vec![
        ToolSpec {
            name: "web_search".into(),
            description: "Search the web and return the top results with titles, URLs and \
                          snippets. Use for recent events and facts you are not sure of."
                .into(),
            parameters: schema(
                json!({"query": string("The search query"),
                       "max_results": {"type": "integer", "minimum": 1, "maximum": 10}}),
                &["query"],
            ),
        },
        ToolSpec {
            name: "web_fetch".into(),
            description: "Fetch a web page and return its main text, without navigation and \
                          ads. Use after web_search to read a result."
                .into(),
            parameters: schema(json!({"url": string("An http(s) URL")}), &["url"]),
        },
        ToolSpec {
            name: "run_code".into(),
            description: "Run a short Python 3 program in a sandbox without network and \
                          return stdout, stderr and the exit code. Limits: 10 s, 256 MB."
                .into(),
            parameters: schema(json!({"code": string("The program")}), &["code"]),
        },
        ToolSpec {
            name: "kubectl_get".into(),
            description: "Read-only kubectl: list or describe resources of the production \
                          cluster (get, describe, logs). Never mutates anything."
                .into(),
            parameters: schema(
                json!({"verb": {"type": "string", "enum": ["get", "describe", "logs"]},
                       "resource": string("e.g. deploy/billing-api"),
                       "namespace": string("Default: prod")}),
                &["verb", "resource"],
            ),
        },
        ToolSpec {
            name: "memory_search".into(),
            description: "Search the long-term memory of this workspace (decisions, \
                          postmortems, preferences) by meaning."
                .into(),
            parameters: schema(
                json!({"query": string("What to look for"),
                       "limit": {"type": "integer", "minimum": 1, "maximum": 20}}),
                &["query"],
            ),
        },
        ToolSpec {
            name: "memory_write".into(),
            description: "Store a fact in the long-term memory of this workspace, with tags."
                .into(),
            parameters: schema(
                json!({"text": string("The fact"),
                       "tags": {"type": "array", "items": {"type": "string"}}}),
                &["text"],
            ),
        },
        ToolSpec {
            name: "create_ticket".into(),
            description: "Open a ticket in the issue tracker for the owning team, with a \
                          title, a description and a priority."
                .into(),
            parameters: schema(
                json!({"team": string("The owning team"), "title": string("Short title"),
                       "description": string("What happened and what was tried"),
                       "priority": {"type": "string", "enum": ["p1", "p2", "p3", "p4"]}}),
                &["team", "title", "description"],
            ),
        },
        ToolSpec {
            name: "get_time".into(),
            description: "The current date and time in a time zone.".into(),
            parameters: schema(json!({"tz": string("IANA zone, e.g. Europe/Paris")}), &[]),
        },
    ]
}

fn user_message(turn: usize) -> String {
    let topics = [
        "billing-api error rate",
        "the search-indexer backlog",
        "why auth-gateway restarts",
        "the media-transcoder queue",
        "notification delays",
        "the reporting job that ran long",
    ];
    format!(
        "Turn {turn}: can you look into {} and tell me what you would check first? We \
         deployed version 2.{turn}.0 this morning and a customer reported problems about an \
         hour later.",
        topics[turn % topics.len()]
    )
}

/// One model call: the chunks turned into the assistant message the runtime appends, and
/// the usage reported.
async fn call(
    provider: &AnthropicProvider,
    request: CompletionRequest,
) -> (ChatMessage, Usage, StopReason) {
    let mut stream = provider.complete(request).await.expect("the call starts");
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut usage = None;
    let mut stop = None;
    while let Some(chunk) = stream.next().await {
        match chunk.expect("no stream error") {
            CompletionChunk::TextDelta { text: t } => text.push_str(&t),
            CompletionChunk::ToolUse { id, name, input } => {
                calls.push(ContentBlock::ToolUse { id, name, input });
            }
            CompletionChunk::Usage { usage: u } => usage = Some(u),
            CompletionChunk::Done { stop_reason } => stop = Some(stop_reason),
            _ => {}
        }
    }
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(ContentBlock::Text { text });
    }
    content.extend(calls);
    let message = ChatMessage {
        role: ChatRole::Assistant,
        content,
    };
    (
        message,
        usage.expect("usage is reported"),
        stop.expect("the answer completes"),
    )
}

#[tokio::test]
async fn thirty_turn_conversation_reads_over_ninety_percent_of_input_from_the_cache() {
    let fake = FakeAnthropic::start_with(FakeAnthropicConfig {
        reply_words: 60,
        ..FakeAnthropicConfig::default()
    })
    .await;
    let config = AnthropicConfig::new(fake.api_key())
        .with_base_url(&fake.base_url())
        .expect("the fake's URL is valid");
    let provider = AnthropicProvider::new(config).expect("the provider builds");
    let mut request = CompletionRequest {
        model: "claude-sonnet-4-5".into(),
        system: Some(system_prompt()),
        messages: Default::default(),
        tools: tools(),
        max_output_tokens: Some(1024),
        temperature: Some(0.2),
        affinity: Some("session-1".into()),
    };
    let mut total = Usage::default();
    let mut requests = 0usize;
    for turn in 1..=TURNS {
        request
            .messages_mut()
            .push(ChatMessage::text(ChatRole::User, user_message(turn)));
        // Every third turn the model first calls a tool, as an agent does.
        if turn % 3 == 0 {
            fake.push(
                Reply::tool_use(vec![(
                    "kubectl_get",
                    json!({"verb": "logs", "resource": format!("deploy/svc-{turn}")}),
                )])
                .preamble("Let me look at the logs first."),
            );
        }
        loop {
            let (reply, usage, stop) = call(&provider, request.clone()).await;
            requests += 1;
            total.add(&usage);
            let calls: Vec<String> = reply
                .content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::ToolUse { id, .. } => Some(id.clone()),
                    _ => None,
                })
                .collect();
            request.messages_mut().push(reply);
            if stop != StopReason::ToolUse {
                break;
            }
            let results = calls
                .into_iter()
                .map(|id| ContentBlock::ToolResult {
                    tool_use_id: id,
                    content: format!(
                        "2026-05-0{} 09:14:03Z WARN pool exhausted (active=64 idle=0 \
                         waiting=212); 2026-05-01 09:14:05Z ERROR request timed out after \
                         30000 ms on /v1/invoices; {}",
                        turn % 9 + 1,
                        "retrying with backoff; ".repeat(8)
                    ),
                    is_error: false,
                })
                .collect();
            request.messages_mut().push(ChatMessage {
                role: ChatRole::User,
                content: results,
            });
        }
    }
    let share = total.cache_read_tokens as f64 / total.input_tokens as f64;
    eprintln!(
        "anthropic prompt cache over {TURNS} turns ({requests} requests): input {} tokens \
         (cached included), cache read {}, cache write {}, uncached {}; cache-read share \
         {:.4}",
        total.input_tokens,
        total.cache_read_tokens,
        total.cache_write_tokens,
        total.input_tokens - total.cache_read_tokens - total.cache_write_tokens,
        share
    );
    assert_eq!(requests, TURNS + TURNS / 3);
    assert!(
        share >= 0.9,
        "cache-read share {share:.4} is below 0.9 ({total:?})"
    );
    assert_eq!(fake.request_count(), requests as u64);
}
