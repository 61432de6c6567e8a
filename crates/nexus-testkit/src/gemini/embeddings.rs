//! Deterministic embeddings for `embedContent` and `batchEmbedContents`: the hash-seeded unit
//! vectors of the OpenAI fake, so equal texts get equal vectors across fakes; and the checks of
//! their requests.

use serde_json::{Value, json};

use super::errors::ApiError;
use super::validate::{CONTENT_KEYS, PART_KEYS, as_array, as_object, fields, invalid_value, join};
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

/// Checks an `embedContent` body (or one request of a batch, at `path`); returns the texts of
/// its parts and the asked dimension.
pub(crate) fn check_request(body: &Value, path: &str) -> Result<(String, Option<usize>), ApiError> {
    let request = as_object(
        body,
        path,
        "type.googleapis.com/google.ai.generativelanguage.v1beta.EmbedContentRequest",
    )?;
    let request = fields(
        request,
        &[
            "model",
            "content",
            "taskType",
            "title",
            "outputDimensionality",
        ],
        path,
    )?;
    let at = join(path, "content");
    let Some(content) = request.get("content") else {
        return Err(ApiError::invalid(format!(
            "* EmbedContentRequest.{}: content is not specified\n",
            if path.is_empty() {
                "content".to_owned()
            } else {
                at
            }
        )));
    };
    let content = as_object(
        content,
        &at,
        "type.googleapis.com/google.ai.generativelanguage.v1beta.Content",
    )?;
    let content = fields(content, CONTENT_KEYS, &at)?;
    let parts = match content.get("parts") {
        Some(parts) => as_array(parts, &format!("{at}.parts"))?,
        None => &[][..],
    };
    if parts.is_empty() {
        return Err(ApiError::invalid(format!(
            "* EmbedContentRequest.{at}.parts: contents.parts must not be empty.\n"
        )));
    }
    let mut text = String::new();
    for (j, part) in parts.iter().enumerate() {
        let at = format!("{at}.parts[{j}]");
        let part = as_object(
            part,
            &at,
            "type.googleapis.com/google.ai.generativelanguage.v1beta.Part",
        )?;
        let part = fields(part, PART_KEYS, &at)?;
        match part.get("text") {
            Some(Value::String(t)) => text.push_str(t),
            _ => {
                return Err(ApiError::invalid(format!(
                    "* EmbedContentRequest.{at}.data: only text parts can be embedded\n"
                )));
            }
        }
    }
    let dimension = match request.get("outputDimensionality") {
        None | Some(Value::Null) => None,
        Some(d) => match d.as_u64() {
            Some(n) if (1..=3072).contains(&n) => usize::try_from(n).ok(),
            _ => {
                return Err(ApiError::invalid(format!(
                    "* EmbedContentRequest.{}: output_dimensionality must be between 1 and 3072\n",
                    join(path, "outputDimensionality")
                )));
            }
        },
    };
    if let Some(task) = request.get("taskType").and_then(Value::as_str) {
        const TASKS: &[&str] = &[
            "TASK_TYPE_UNSPECIFIED",
            "RETRIEVAL_QUERY",
            "RETRIEVAL_DOCUMENT",
            "SEMANTIC_SIMILARITY",
            "CLASSIFICATION",
            "CLUSTERING",
            "QUESTION_ANSWERING",
            "FACT_VERIFICATION",
            "CODE_RETRIEVAL_QUERY",
        ];
        if !TASKS.contains(&task) {
            return Err(invalid_value(
                &join(path, "taskType"),
                "type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType",
                &Value::String(task.to_owned()),
            ));
        }
    }
    Ok((text, dimension))
}

/// Checks a `batchEmbedContents` body for `model`; returns each request's text and dimension.
pub(crate) fn check_batch(
    body: &Value,
    model: &str,
) -> Result<Vec<(String, Option<usize>)>, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid_payload(
            "",
            "Invalid JSON payload received. Unexpected token.",
        ));
    };
    let request = fields(obj, &["requests"], "")?;
    let requests = match request.get("requests") {
        Some(requests) => as_array(requests, "requests")?,
        None => &[][..],
    };
    if requests.is_empty() {
        return Err(ApiError::invalid(
            "* BatchEmbedContentsRequest.requests: requests must not be empty\n",
        ));
    }
    if requests.len() > 100 {
        return Err(ApiError::invalid(
            "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n",
        ));
    }
    let expected = format!("models/{model}");
    requests
        .iter()
        .enumerate()
        .map(|(i, request)| {
            let path = format!("requests[{i}]");
            let named = request.get("model").and_then(Value::as_str).unwrap_or("");
            if named != expected {
                return Err(ApiError::invalid(format!(
                    "* BatchEmbedContentsRequest.model: {path}.model: model `{named}` does not \
                     match the batch model `{expected}`\n"
                )));
            }
            check_request(request, &path)
        })
        .collect()
}
