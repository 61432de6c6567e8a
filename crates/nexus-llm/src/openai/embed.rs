//! `/embeddings` of OpenAI, OpenRouter and compatible servers: inputs in batches, vectors
//! put back in input order by their `index`.

use nexus_core::llm::{EmbeddingRequest, Embeddings, LlmError};
use serde::Deserialize;
use serde_json::json;

use super::client::OpenAiClient;

/// Inputs per call (OpenAI takes up to 2048; smaller batches keep answers small).
const BATCH: usize = 256;

#[derive(Debug, Deserialize)]
struct Answer {
    data: Vec<Item>,
    #[serde(default)]
    usage: Option<AnswerUsage>,
}

#[derive(Debug, Deserialize)]
struct Item {
    index: usize,
    embedding: Vec<f32>,
}

#[derive(Debug, Deserialize)]
struct AnswerUsage {
    #[serde(default)]
    prompt_tokens: u64,
}

/// Embeds `request`'s inputs, a batch at a time.
pub(crate) async fn embed(
    client: &OpenAiClient,
    request: &EmbeddingRequest,
) -> Result<Embeddings, LlmError> {
    let mut out = Embeddings {
        vectors: Vec::with_capacity(request.inputs.len()),
        input_tokens: 0,
    };
    for batch in request.inputs.chunks(BATCH) {
        let mut body = json!({
            "model": request.model,
            "input": batch,
            "encoding_format": "float",
        });
        if let Some(d) = request.dimensions {
            body["dimensions"] = json!(d);
        }
        let bytes = serde_json::to_vec(&body).map_err(|e| LlmError::BadRequest {
            message: format!("cannot serialize the embeddings request: {e}"),
        })?;
        let value = client.embeddings(bytes, &request.model).await?;
        let answer: Answer = serde_json::from_value(value).map_err(|e| LlmError::Malformed {
            detail: format!("unexpected embeddings answer: {e}"),
        })?;
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; batch.len()];
        for item in answer.data {
            let slot = vectors
                .get_mut(item.index)
                .ok_or_else(|| LlmError::Malformed {
                    detail: format!(
                        "embedding index {} for a batch of {}",
                        item.index,
                        batch.len()
                    ),
                })?;
            *slot = Some(item.embedding);
        }
        for (i, vector) in vectors.into_iter().enumerate() {
            out.vectors.push(vector.ok_or_else(|| LlmError::Malformed {
                detail: format!("no embedding for input {i} of the batch"),
            })?);
        }
        out.input_tokens += answer.usage.map_or(0, |u| u.prompt_tokens);
    }
    Ok(out)
}
