//! The conformance cases: one public async function per behaviour, each taking the
//! [`Harness`] of the provider under test. Assertions say what a user would notice.

use std::time::{Duration, Instant};

use nexus_core::llm::{
    ChatMessage, ChatRole, CompletionChunk, ContentBlock, ImageSource, LlmError, StopReason,
    ToolSpec, Usage,
};
use serde_json::json;

use super::{
    ContextOverflow, Harness, Outcome, ProviderOptions, Scenario, WireImage, request, run,
};
use crate::retry::{RetryPolicy, Retrying};

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".to_owned(),
        description: "Current weather of a city".to_owned(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    }
}

async fn call(h: &impl Harness, scenario: Scenario, options: ProviderOptions) -> Outcome {
    h.script(scenario);
    let provider = h.provider(options);
    let mut req = request(h, "hello");
    req.tools = vec![weather_tool()];
    run(provider.as_ref(), req).await
}

async fn call_default(h: &impl Harness, scenario: Scenario) -> Outcome {
    call(h, scenario, ProviderOptions::default()).await
}

fn last_is_done(outcome: &Outcome, reason: StopReason) {
    assert_eq!(
        outcome.error, None,
        "unexpected error; chunks: {:?}",
        outcome.chunks
    );
    assert_eq!(
        outcome.chunks.last(),
        Some(&CompletionChunk::Done {
            stop_reason: reason
        }),
        "the last chunk must be Done: {:?}",
        outcome.chunks
    );
    let dones = outcome
        .chunks
        .iter()
        .filter(|c| matches!(c, CompletionChunk::Done { .. }))
        .count();
    assert_eq!(dones, 1, "exactly one Done: {:?}", outcome.chunks);
}

/// Text arrives in deltas that concatenate to the answer, then one `Done(EndTurn)`; text sent
/// with pauses between its frames arrives in several deltas (what arrives together may come as
/// one).
pub async fn streams_text_as_deltas_then_done(h: &impl Harness) {
    let outcome = call_default(h, Scenario::Text("Hello there, dear world".into())).await;
    last_is_done(&outcome, StopReason::EndTurn);
    assert_eq!(outcome.text(), "Hello there, dear world");

    let outcome = call_default(h, Scenario::Stall(Duration::from_millis(50))).await;
    last_is_done(&outcome, StopReason::EndTurn);
    assert_eq!(outcome.text(), "one two three");
    let deltas = outcome
        .chunks
        .iter()
        .filter(|c| matches!(c, CompletionChunk::TextDelta { .. }))
        .count();
    assert!(
        deltas > 1,
        "text sent with pauses must stream in several deltas: {:?}",
        outcome.chunks
    );
}

/// A tool call whose arguments arrive in fragments: `ToolUseStart`, then one complete
/// `ToolUse` with parsed arguments, then `Done(ToolUse)`.
pub async fn streams_tool_call_with_fragmented_arguments(h: &impl Harness) {
    let args = json!({"city": "Paris", "unit": "celsius", "days": 3});
    let outcome = call_default(
        h,
        Scenario::ToolCalls(vec![("get_weather".into(), args.clone())]),
    )
    .await;
    last_is_done(&outcome, StopReason::ToolUse);
    let start = outcome
        .chunks
        .iter()
        .position(|c| matches!(c, CompletionChunk::ToolUseStart { .. }));
    let full = outcome
        .chunks
        .iter()
        .position(|c| matches!(c, CompletionChunk::ToolUse { .. }));
    let (Some(start), Some(full)) = (start, full) else {
        panic!("expected ToolUseStart and ToolUse: {:?}", outcome.chunks);
    };
    assert!(start < full);
    let (
        CompletionChunk::ToolUseStart {
            id: start_id,
            name: start_name,
            index,
        },
        CompletionChunk::ToolUse { id, name, input },
    ) = (&outcome.chunks[start], &outcome.chunks[full])
    else {
        unreachable!()
    };
    assert_eq!(
        (start_id, start_name.as_str(), *index),
        (id, "get_weather", 0)
    );
    assert_eq!(name, "get_weather");
    assert_eq!(input, &args);
    assert!(!id.is_empty());
}

/// Parallel tool calls come out complete, in order, with distinct ids.
pub async fn streams_parallel_tool_calls_in_order(h: &impl Harness) {
    let calls = vec![
        ("get_weather".to_owned(), json!({"city": "Paris"})),
        ("get_weather".to_owned(), json!({"city": "Tokyo"})),
        ("get_time".to_owned(), json!({"tz": "Asia/Tokyo"})),
    ];
    let outcome = call_default(h, Scenario::ToolCalls(calls.clone())).await;
    last_is_done(&outcome, StopReason::ToolUse);
    let uses: Vec<(String, String, serde_json::Value)> = outcome
        .chunks
        .iter()
        .filter_map(|c| match c {
            CompletionChunk::ToolUse { id, name, input } => {
                Some((id.clone(), name.clone(), input.clone()))
            }
            _ => None,
        })
        .collect();
    let got: Vec<_> = uses
        .iter()
        .map(|(_, n, i)| (n.clone(), i.clone()))
        .collect();
    assert_eq!(got, calls);
    let mut ids: Vec<_> = uses.iter().map(|(id, _, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "ids must be distinct: {uses:?}");
    let starts = outcome
        .chunks
        .iter()
        .filter(|c| matches!(c, CompletionChunk::ToolUseStart { .. }))
        .count();
    assert_eq!(starts, 3);
}

/// An image in the request reaches the wire with its media type and bytes intact.
pub async fn sends_images_to_the_wire(h: &impl Harness) {
    h.script(Scenario::Text("a red dot".into()));
    let data = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    let mut req = request(h, "");
    req.messages = vec![ChatMessage {
        role: ChatRole::User,
        content: vec![
            ContentBlock::Text {
                text: "What is in this picture?".into(),
            },
            ContentBlock::Image {
                source: ImageSource::Base64 {
                    media_type: "image/png".into(),
                    data: data.into(),
                },
            },
        ],
    }]
    .into();
    let outcome = run(h.provider(ProviderOptions::default()).as_ref(), req).await;
    last_is_done(&outcome, StopReason::EndTurn);
    assert_eq!(
        h.last_request_images(),
        vec![WireImage {
            media_type: "image/png".into(),
            data: data.into()
        }]
    );
}

/// A history with tool calls and their results is accepted by the (validating) fake.
pub async fn tool_results_answer_tool_calls_on_the_wire(h: &impl Harness) {
    h.script(Scenario::Text(
        "It is sunny in Paris and rainy in Tokyo.".into(),
    ));
    let mut req = request(h, "Weather in Paris and Tokyo?");
    req.tools = vec![weather_tool()];
    req.messages_mut().push(ChatMessage {
        role: ChatRole::Assistant,
        content: vec![
            ContentBlock::Text {
                text: "Let me check.".into(),
            },
            ContentBlock::ToolUse {
                id: "call_1".into(),
                name: "get_weather".into(),
                input: json!({"city": "Paris"}),
            },
            ContentBlock::ToolUse {
                id: "call_2".into(),
                name: "get_weather".into(),
                input: json!({"city": "Tokyo"}),
            },
        ],
    });
    req.messages_mut().push(ChatMessage {
        role: ChatRole::User,
        content: vec![
            ContentBlock::ToolResult {
                tool_use_id: "call_1".into(),
                content: "sunny".into(),
                is_error: false,
            },
            ContentBlock::ToolResult {
                tool_use_id: "call_2".into(),
                content: "lookup failed".into(),
                is_error: true,
            },
        ],
    });
    let outcome = run(h.provider(ProviderOptions::default()).as_ref(), req).await;
    last_is_done(&outcome, StopReason::EndTurn);
}

/// Usage is reported, cached input tokens included, and `Done` still comes last.
pub async fn reports_usage_with_cached_tokens(h: &impl Harness) {
    let usage = Usage {
        input_tokens: 1200,
        output_tokens: 7,
        cache_read_tokens: 1024,
        cache_write_tokens: 0,
    };
    let outcome = call_default(h, Scenario::TextWithUsage("cached answer".into(), usage)).await;
    last_is_done(&outcome, StopReason::EndTurn);
    let reported: Vec<_> = outcome
        .chunks
        .iter()
        .filter_map(|c| match c {
            CompletionChunk::Usage { usage } => Some(*usage),
            _ => None,
        })
        .collect();
    assert_eq!(reported, vec![usage]);
}

/// The output limit is reported as `Done(MaxTokens)`.
pub async fn reports_max_tokens_stop(h: &impl Harness) {
    let outcome = call_default(h, Scenario::MaxTokens("cut by the limit".into())).await;
    last_is_done(&outcome, StopReason::MaxTokens);
}

/// A rejected key is `Auth`.
pub async fn rejected_key_is_auth_error(h: &impl Harness) {
    let provider = h.provider(ProviderOptions {
        valid_key: false,
        ..ProviderOptions::default()
    });
    let outcome = run(provider.as_ref(), request(h, "hi")).await;
    assert!(
        matches!(outcome.error, Some(LlmError::Auth { .. })),
        "{outcome:?}"
    );
}

/// A rate limit is `RateLimited` with the delay the service asked for.
pub async fn rate_limit_carries_retry_after(h: &impl Harness) {
    let outcome = call_default(h, Scenario::RateLimited(Duration::from_secs(2))).await;
    assert_eq!(
        outcome.error,
        Some(LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        })
    );
}

/// An exhausted quota is `QuotaExceeded`, not a retryable rate limit.
pub async fn exhausted_quota_is_quota_exceeded(h: &impl Harness) {
    let outcome = call_default(h, Scenario::QuotaExceeded).await;
    assert!(
        matches!(outcome.error, Some(LlmError::QuotaExceeded { .. })),
        "{outcome:?}"
    );
}

/// A too-long conversation is `ContextLengthExceeded` (or, for a vendor that says so only in
/// prose, `BadRequest`), and never worth a retry.
pub async fn context_overflow_is_context_length_exceeded(h: &impl Harness) {
    let outcome = call_default(h, Scenario::ContextLengthExceeded).await;
    match h.context_overflow() {
        ContextOverflow::Typed => assert!(
            matches!(outcome.error, Some(LlmError::ContextLengthExceeded { .. })),
            "{outcome:?}"
        ),
        ContextOverflow::ProseOnly => assert!(
            matches!(outcome.error, Some(LlmError::BadRequest { .. })),
            "{outcome:?}"
        ),
    }
    assert!(
        outcome.error.as_ref().is_some_and(|e| !e.is_retryable()),
        "{outcome:?}"
    );
}

/// HTTP 500 is `Server { status: 500 }`.
pub async fn server_error_is_server(h: &impl Harness) {
    let outcome = call_default(h, Scenario::ServerError).await;
    assert_eq!(outcome.error, Some(LlmError::Server { status: 500 }));
}

/// The overloaded status is `Overloaded`.
pub async fn overload_is_overloaded(h: &impl Harness) {
    let outcome = call_default(h, Scenario::Overloaded).await;
    assert!(
        matches!(outcome.error, Some(LlmError::Overloaded { .. })),
        "{outcome:?}"
    );
}

/// A stream cut mid-way yields its text, then `StreamInterrupted`, and no `Done`.
pub async fn cut_stream_is_interrupted(h: &impl Harness) {
    let outcome = call_default(h, Scenario::CutAfter(3)).await;
    assert_eq!(
        outcome.error,
        Some(LlmError::StreamInterrupted),
        "{outcome:?}"
    );
    assert!(
        !outcome.text().is_empty(),
        "text before the cut must arrive"
    );
    assert!(
        !outcome
            .chunks
            .iter()
            .any(|c| matches!(c, CompletionChunk::Done { .. }))
    );
}

/// Invalid JSON in a frame is `Malformed`.
pub async fn malformed_frame_is_malformed(h: &impl Harness) {
    let outcome = call_default(h, Scenario::Malformed).await;
    assert!(
        matches!(outcome.error, Some(LlmError::Malformed { .. })),
        "{outcome:?}"
    );
}

/// An error event inside a started stream is `InStream`.
pub async fn in_stream_error_is_reported(h: &impl Harness) {
    let outcome = call_default(h, Scenario::InStreamError).await;
    assert!(
        matches!(outcome.error, Some(LlmError::InStream { .. })),
        "{outcome:?}"
    );
}

/// Unknown fields, events and comments do not disturb the answer.
pub async fn unknown_fields_and_events_are_ignored(h: &impl Harness) {
    let outcome = call_default(h, Scenario::Noisy("still understood fine".into())).await;
    last_is_done(&outcome, StopReason::EndTurn);
    assert_eq!(outcome.text(), "still understood fine");
}

/// A service slower than the first-byte deadline is `Timeout { first_byte }`, on time.
pub async fn slow_first_byte_times_out(h: &impl Harness) {
    let options = ProviderOptions {
        first_byte_timeout: Duration::from_millis(300),
        ..ProviderOptions::default()
    };
    let started = Instant::now();
    let outcome = call(h, Scenario::SlowFirstByte(Duration::from_secs(5)), options).await;
    assert_eq!(
        outcome.error,
        Some(LlmError::Timeout {
            stage: "first_byte"
        })
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

/// A stream silent for longer than the idle deadline is `Timeout { idle }`.
pub async fn idle_stream_times_out(h: &impl Harness) {
    let options = ProviderOptions {
        idle_timeout: Duration::from_millis(300),
        ..ProviderOptions::default()
    };
    let started = Instant::now();
    let outcome = call(h, Scenario::Stall(Duration::from_secs(5)), options).await;
    assert_eq!(outcome.error, Some(LlmError::Timeout { stage: "idle" }));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

fn retrying(h: &impl Harness) -> Retrying {
    let policy = RetryPolicy {
        max_retries: 3,
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(5),
        jitter: 0.0,
    };
    Retrying::new(h.provider(ProviderOptions::default()), policy)
}

/// Behind `Retrying`, a rate limit then success gives one answer, after the asked delay.
pub async fn retrying_honours_retry_after_then_answers_once(h: &impl Harness) {
    h.script(Scenario::RateLimited(Duration::from_secs(1)));
    h.script(Scenario::Text("answer after waiting".into()));
    let before = h.request_count();
    let started = Instant::now();
    let outcome = run(&retrying(h), request(h, "hi")).await;
    last_is_done(&outcome, StopReason::EndTurn);
    assert_eq!(outcome.text(), "answer after waiting");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried too early: {:?}",
        started.elapsed()
    );
    assert_eq!(h.request_count() - before, 2);
}

/// Behind `Retrying`, a server error before any chunk is retried.
pub async fn retrying_retries_server_error_before_first_chunk(h: &impl Harness) {
    h.script(Scenario::ServerError);
    h.script(Scenario::Text("second time lucky".into()));
    let before = h.request_count();
    let outcome = run(&retrying(h), request(h, "hi")).await;
    last_is_done(&outcome, StopReason::EndTurn);
    assert_eq!(h.request_count() - before, 2);
}

/// Behind `Retrying`, an invalid request is never sent again.
pub async fn retrying_never_retries_bad_request(h: &impl Harness) {
    h.script(Scenario::BadRequest);
    h.script(Scenario::Text("must not be used".into()));
    let before = h.request_count();
    let outcome = run(&retrying(h), request(h, "hi")).await;
    assert!(
        matches!(outcome.error, Some(LlmError::BadRequest { .. })),
        "{outcome:?}"
    );
    assert_eq!(h.request_count() - before, 1);
}

/// Behind `Retrying`, a stream that broke after text reached the caller is not replayed.
pub async fn retrying_never_retries_after_first_chunk(h: &impl Harness) {
    h.script(Scenario::CutAfter(3));
    h.script(Scenario::Text("must not be used".into()));
    let before = h.request_count();
    let outcome = run(&retrying(h), request(h, "hi")).await;
    assert_eq!(outcome.error, Some(LlmError::StreamInterrupted));
    assert!(!outcome.text().is_empty());
    assert!(!outcome.text().contains("must not be used"));
    assert_eq!(h.request_count() - before, 1);
}
