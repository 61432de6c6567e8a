//! A Bot API call's parameters from any of the four encodings (query string, urlencoded form,
//! JSON, multipart), with the typed reads the methods need. In query and form encodings every
//! value is a string and arrays/objects are JSON-encoded strings, as on Telegram.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;
use serde_json::{Map, Value};

use super::state::ApiError;

/// A file part of a multipart call.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub(crate) filename: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) bytes: Bytes,
}

/// The parameters of one call.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    pub(crate) values: Map<String, Value>,
    pub(crate) files: HashMap<String, Upload>,
}

/// Largest request body read.
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

impl Params {
    /// Reads query and body of `request`.
    pub(crate) async fn read(request: Request) -> Result<Params, ApiError> {
        let mut params = Params::default();
        if let Some(query) = request.uri().query() {
            for (k, v) in decode_form(query) {
                params.values.insert(k, Value::String(v));
            }
        }
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            let mut multipart = Multipart::from_request(request, &())
                .await
                .map_err(|e| ApiError::bad_request(format!("bad multipart body: {e}")))?;
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|e| ApiError::bad_request(format!("bad multipart body: {e}")))?
            {
                let name = field.name().unwrap_or_default().to_owned();
                let filename = field.file_name().map(str::to_owned);
                let part_type = field.content_type().map(str::to_owned);
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| ApiError::bad_request(format!("bad multipart body: {e}")))?;
                if filename.is_some() {
                    params.files.insert(
                        name,
                        Upload {
                            filename,
                            content_type: part_type,
                            bytes,
                        },
                    );
                } else {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    params.values.insert(name, Value::String(text));
                }
            }
            return Ok(params);
        }
        let body = axum::body::to_bytes(request.into_body(), MAX_REQUEST_BYTES)
            .await
            .map_err(|_| ApiError::new(413, "Request Entity Too Large"))?;
        if body.is_empty() {
            return Ok(params);
        }
        if content_type.starts_with("application/json") {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(map)) => params.values.extend(map),
                _ => return Err(ApiError::bad_request("invalid JSON object in request body")),
            }
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            for (k, v) in decode_form(&String::from_utf8_lossy(&body)) {
                params.values.insert(k, Value::String(v));
            }
        }
        Ok(params)
    }

    /// The values as recorded: strings that hold JSON arrays or objects are decoded.
    pub(crate) fn recorded(&self) -> Value {
        let mut map = Map::new();
        for (k, v) in &self.values {
            let v = match v {
                Value::String(s) if s.starts_with('[') || s.starts_with('{') => {
                    serde_json::from_str(s).unwrap_or_else(|_| v.clone())
                }
                other => other.clone(),
            };
            map.insert(k.clone(), v);
        }
        for (k, f) in &self.files {
            map.insert(
                k.clone(),
                serde_json::json!({"filename": f.filename, "content_type": f.content_type, "size": f.bytes.len()}),
            );
        }
        Value::Object(map)
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// A string parameter (numbers given as numbers are their text).
    pub(crate) fn str(&self, key: &str) -> Option<String> {
        match self.values.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// An integer parameter: absent is `None`, malformed is a 400.
    pub(crate) fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::bad_request(format!("invalid {key} specified"))),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid {key} specified"))),
            Some(_) => Err(ApiError::bad_request(format!("invalid {key} specified"))),
        }
    }

    pub(crate) fn bool(&self, key: &str) -> bool {
        match self.values.get(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true" || s == "1",
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            _ => false,
        }
    }

    /// A JSON array/object parameter, given as JSON or as a JSON-encoded string.
    pub(crate) fn json(&self, key: &str) -> Result<Option<Value>, ApiError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => serde_json::from_str(s)
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("can't parse {key} JSON object"))),
            Some(v @ (Value::Object(_) | Value::Array(_))) => Ok(Some(v.clone())),
            Some(_) => Err(ApiError::bad_request(format!(
                "can't parse {key} JSON object"
            ))),
        }
    }

    /// `chat_id`: an integer (or its digits); `@username` chats do not exist on the fake.
    pub(crate) fn chat_id(&self) -> Result<i64, ApiError> {
        match self.int("chat_id") {
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(ApiError::bad_request("chat_id is empty")),
            Err(_) => Err(ApiError::bad_request("chat not found")),
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` pairs.
pub(crate) fn decode_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_percent_decoded() {
        let pairs = decode_form("text=a%20b+c&allowed_updates=%5B%22message%22%5D&x=%zz&y=%2");
        assert_eq!(pairs[0], ("text".into(), "a b c".into()));
        assert_eq!(pairs[1].1, "[\"message\"]");
        assert_eq!(pairs[2].1, "%zz");
        assert_eq!(pairs[3].1, "%2");
    }
}
