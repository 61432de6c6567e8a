//! `batchEmbedContents`: inputs in batches of up to 100 (the API's limit), vectors in input
//! order, task types mapped from the neutral [`EmbeddingTask`].

use nexus_core::llm::{EmbeddingRequest, EmbeddingTask, Embeddings, LlmError};
use serde::Deserialize;
use serde_json::json;

use super::client::GeminiClient;
use super::config::GeminiConfig;

/// Requests per `batchEmbedContents` call (the API refuses more than 100).
const BATCH: usize = 100;

#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    embeddings: Vec<Vector>,
}

#[derive(Debug, Deserialize)]
struct Vector {
    values: Vec<f32>,
}

fn task_type(task: EmbeddingTask) -> &'static str {
    match task {
        EmbeddingTask::Query => "RETRIEVAL_QUERY",
        EmbeddingTask::Document => "RETRIEVAL_DOCUMENT",
        EmbeddingTask::Similarity => "SEMANTIC_SIMILARITY",
    }
}

/// Embeds `request`'s inputs, a batch at a time. Gemini reports no token usage for
/// embeddings, so `input_tokens` stays 0.
pub(crate) async fn embed(
    client: &GeminiClient,
    config: &GeminiConfig,
    request: &EmbeddingRequest,
) -> Result<Embeddings, LlmError> {
    let resource = GeminiConfig::resource_name(&request.model)?;
    let url = config.batch_embed_url(&request.model)?;
    let mut out = Embeddings {
        vectors: Vec::with_capacity(request.inputs.len()),
        input_tokens: 0,
    };
    for batch in request.inputs.chunks(BATCH) {
        let requests: Vec<serde_json::Value> = batch
            .iter()
            .map(|text| {
                let mut one = json!({
                    "model": resource,
                    "content": {"parts": [{"text": text}]},
                });
                if let Some(task) = request.task {
                    one["taskType"] = json!(task_type(task));
                }
                if let Some(d) = request.dimensions {
                    one["outputDimensionality"] = json!(d);
                }
                one
            })
            .collect();
        let body = serde_json::to_vec(&json!({ "requests": requests })).map_err(|e| {
            LlmError::BadRequest {
                message: format!("cannot serialize the embeddings request: {e}"),
            }
        })?;
        let value = client.post_json(url.clone(), body, &request.model).await?;
        let answer: Answer = serde_json::from_value(value).map_err(|e| LlmError::Malformed {
            detail: format!("unexpected embeddings answer: {e}"),
        })?;
        if answer.embeddings.len() != batch.len() {
            return Err(LlmError::Malformed {
                detail: format!(
                    "{} embeddings for a batch of {}",
                    answer.embeddings.len(),
                    batch.len()
                ),
            });
        }
        out.vectors
            .extend(answer.embeddings.into_iter().map(|v| v.values));
    }
    Ok(out)
}
