//! Deterministic embeddings for `embedContent` and `batchEmbedContents`: the hash-seeded unit
//! vectors of the OpenAI fake, so equal texts get equal vectors across fakes.

use serde_json::{Value, json};

use crate::openai::embeddings::vector;

/// The dimension a model answers with when `outputDimensionality` is not given.
pub(crate) fn default_dimension(model: &str) -> usize {
    if model.starts_with("gemini-embedding") {
        3072
    } else {
        768
    }
}

/// One `ContentEmbedding`.
pub(crate) fn embedding(model: &str, text: &str, dimension: Option<usize>) -> Value {
    let values = vector(text, dimension.unwrap_or_else(|| default_dimension(model)));
    json!({ "values": values })
}

/// The `embedContent` answer.
pub(crate) fn single(model: &str, text: &str, dimension: Option<usize>) -> Value {
    json!({ "embedding": embedding(model, text, dimension) })
}

/// The `batchEmbedContents` answer, in request order.
pub(crate) fn batch(model: &str, requests: &[(String, Option<usize>)]) -> Value {
    let embeddings: Vec<Value> = requests
        .iter()
        .map(|(text, dimension)| embedding(model, text, *dimension))
        .collect();
    json!({ "embeddings": embeddings })
}
