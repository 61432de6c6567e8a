//! The request checks the real service answers with 400 `INVALID_ARGUMENT`.
//!
//! The API parses JSON strictly against its protos (an unknown key is "Unknown name …: Cannot
//! find field", a wrong type "Invalid value at …"), then validates fields
//! (`* GenerateContentRequest.field: problem`) and the conversation (roles, function calls
//! answered by function responses of the same names, thought signatures echoed on the part
//! that carried them). Keys are accepted in camelCase and snake_case, as proto JSON parsers
//! do; error paths name fields in snake_case, as Google's do. Only what a client could get
//! wrong is checked; this is not a full proto validator.

use base64::Engine;
use serde_json::{Map, Value};

use super::errors::ApiError;
use super::{Shared, SignedCall, tools};

/// The signature Google documents for function calls the model did not make; always accepted.
const FOREIGN_SIGNATURE: &str = "skip_thought_signature_validator";

/// The fields of `GenerateContentRequest`.
const REQUEST_KEYS: &[&str] = &[
    "model",
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
];
/// The fields of `Content`.
pub(super) const CONTENT_KEYS: &[&str] = &["role", "parts"];
/// The fields of `Part`.
pub(super) const PART_KEYS: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "thought",
    "thoughtSignature",
    "videoMetadata",
    "partMetadata",
];
/// The fields of the `data` oneof of `Part`: exactly one must be set.
const PART_DATA: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
];
/// The fields of `GenerationConfig`.
const GENERATION_KEYS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "mediaResolution",
];

/// What a valid `generateContent` request asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GeneratePlan {
    /// The text of the last user turn (for the echo reply).
    pub(crate) last_user_text: String,
    /// Characters of all content, for a token estimate.
    pub(crate) prompt_chars: usize,
}

/// `functionDeclarations` → `function_declarations`.
pub(super) fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `function_declarations` → `functionDeclarations`.
pub(super) fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The object's entries with keys in camelCase; an unknown key is refused.
pub(super) fn fields(
    obj: &Map<String, Value>,
    known: &[&str],
    path: &str,
) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for (key, value) in obj {
        let name = camel(key);
        if !known.contains(&name.as_str()) {
            return Err(ApiError::unknown_field(path, key));
        }
        out.insert(name, value.clone());
    }
    Ok(out)
}

pub(super) fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        snake(field)
    } else {
        format!("{path}.{}", snake(field))
    }
}

/// `Invalid value at 'path' (TYPE), value`.
pub(super) fn invalid_value(path: &str, kind: &str, value: &Value) -> ApiError {
    ApiError::invalid_payload(path, format!("Invalid value at '{path}' ({kind}), {value}"))
}

pub(super) fn as_object<'a>(
    value: &'a Value,
    path: &str,
    kind: &str,
) -> Result<&'a Map<String, Value>, ApiError> {
    value
        .as_object()
        .ok_or_else(|| invalid_value(path, kind, value))
}

pub(super) fn as_array<'a>(value: &'a Value, path: &str) -> Result<&'a [Value], ApiError> {
    match value {
        Value::Array(items) => Ok(items),
        _ => Err(ApiError::invalid_payload(
            path,
            format!(
                "Invalid JSON payload received. Unknown name \"{}\": Proto field is repeating, \
                 cannot start non-list.",
                path.rsplit('.').next().unwrap_or(path)
            ),
        )),
    }
}

/// Checks a `generateContent` / `streamGenerateContent` body.
pub(crate) fn generate(body: &Value, shared: &Shared) -> Result<GeneratePlan, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid_payload(
            "",
            "Invalid JSON payload received. Unexpected token.",
        ));
    };
    let request = fields(obj, REQUEST_KEYS, "")?;
    if let Some(system) = request.get("systemInstruction") {
        let system = as_object(
            system,
            "system_instruction",
            "type.googleapis.com/google.ai.generativelanguage.v1beta.Content",
        )?;
        let system = fields(system, CONTENT_KEYS, "system_instruction")?;
        let parts = system
            .get("parts")
            .map(|p| as_array(p, "system_instruction.parts"))
            .transpose()?;
        if parts.is_none_or(<[Value]>::is_empty) {
            return Err(ApiError::invalid(
                "* GenerateContentRequest.system_instruction.parts: contents.parts must not be empty.\n",
            ));
        }
    }
    if let Some(tools) = request.get("tools") {
        tools::check(as_array(tools, "tools")?)?;
    }
    if let Some(config) = request.get("generationConfig") {
        check_generation_config(config)?;
    }
    let contents = match request.get("contents") {
        None | Some(Value::Null) => &[][..],
        Some(contents) => as_array(contents, "contents")?,
    };
    if contents.is_empty() {
        return Err(ApiError::invalid(
            "* GenerateContentRequest.contents: contents is not specified\n",
        ));
    }
    let turns = contents
        .iter()
        .enumerate()
        .map(|(i, content)| check_content(i, content))
        .collect::<Result<Vec<Turn>, ApiError>>()?;
    check_function_turns(&turns)?;
    check_signatures(&turns, shared)?;
    let last_user_text = turns
        .iter()
        .rev()
        .find(|t| t.role == Role::User && !t.text.is_empty())
        .map(|t| t.text.clone())
        .unwrap_or_default();
    Ok(GeneratePlan {
        last_user_text,
        prompt_chars: turns.iter().map(|t| t.chars).sum(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Model,
}

/// One checked content.
#[derive(Debug)]
struct Turn {
    index: usize,
    role: Role,
    text: String,
    chars: usize,
    /// `(part index, name, args, thoughtSignature)` of each function call.
    calls: Vec<(usize, String, Value, Option<String>)>,
    /// Names of the function responses.
    responses: Vec<String>,
}

fn check_content(i: usize, content: &Value) -> Result<Turn, ApiError> {
    let path = format!("contents[{i}]");
    let content = as_object(
        content,
        &path,
        "type.googleapis.com/google.ai.generativelanguage.v1beta.Content",
    )?;
    let content = fields(content, CONTENT_KEYS, &path)?;
    let role = match content.get("role") {
        None | Some(Value::Null) => Role::User,
        Some(Value::String(role)) if role == "user" => Role::User,
        Some(Value::String(role)) if role == "model" => Role::Model,
        Some(_) => return Err(ApiError::invalid("Please use a valid role: user, model.")),
    };
    let parts = match content.get("parts") {
        None | Some(Value::Null) => &[][..],
        Some(parts) => as_array(parts, &format!("{path}.parts"))?,
    };
    if parts.is_empty() {
        return Err(ApiError::invalid(format!(
            "* GenerateContentRequest.{path}.parts: contents.parts must not be empty.\n"
        )));
    }
    let mut turn = Turn {
        index: i,
        role,
        text: String::new(),
        chars: 0,
        calls: Vec::new(),
        responses: Vec::new(),
    };
    for (j, part) in parts.iter().enumerate() {
        check_part(&format!("{path}.parts[{j}]"), j, part, &mut turn)?;
    }
    Ok(turn)
}

fn check_part(path: &str, j: usize, part: &Value, turn: &mut Turn) -> Result<(), ApiError> {
    let part = as_object(
        part,
        path,
        "type.googleapis.com/google.ai.generativelanguage.v1beta.Part",
    )?;
    let part = fields(part, PART_KEYS, path)?;
    let data: Vec<&str> = PART_DATA
        .iter()
        .copied()
        .filter(|k| part.contains_key(*k))
        .collect();
    match data.as_slice() {
        [] => {
            return Err(ApiError::invalid(format!(
                "* GenerateContentRequest.{path}.data: required oneof field 'data' must have one \
                 initialized field\n"
            )));
        }
        [_] => {}
        [_, second, ..] => {
            return Err(ApiError::invalid_payload(
                path,
                format!(
                    "Invalid JSON payload received. Oneof field 'data' is already set. Cannot set \
                     '{}'",
                    snake(second)
                ),
            ));
        }
    }
    let signature = match part.get("thoughtSignature") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(invalid_value(
                &join(path, "thoughtSignature"),
                "TYPE_BYTES",
                other,
            ));
        }
    };
    if let Some(text) = part.get("text") {
        let Some(text) = text.as_str() else {
            return Err(invalid_value(&join(path, "text"), "TYPE_STRING", text));
        };
        turn.chars += text.len();
        if part.get("thought") != Some(&Value::Bool(true)) {
            turn.text.push_str(text);
        }
    }
    if let Some(inline) = part.get("inlineData") {
        let at = join(path, "inlineData");
        let inline = as_object(
            inline,
            &at,
            "type.googleapis.com/google.ai.generativelanguage.v1beta.Blob",
        )?;
        let inline = fields(inline, &["mimeType", "data"], &at)?;
        if inline
            .get("mimeType")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::invalid(format!(
                "* GenerateContentRequest.{at}.mime_type: mime_type must be specified\n"
            )));
        }
        let data = inline.get("data").cloned().unwrap_or(Value::Null);
        let decoded = data
            .as_str()
            .map(|d| base64::engine::general_purpose::STANDARD.decode(d));
        if !matches!(decoded, Some(Ok(bytes)) if !bytes.is_empty()) {
            return Err(ApiError::invalid_payload(
                &format!("{at}.data"),
                format!(
                    "Invalid value at '{at}.data' (TYPE_BYTES), Base64 decoding failed for {data}"
                ),
            ));
        }
    }
    if let Some(call) = part.get("functionCall") {
        let at = join(path, "functionCall");
        let call = as_object(
            call,
            &at,
            "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCall",
        )?;
        let call = fields(call, &["id", "name", "args"], &at)?;
        let name = required_name(&call, &at)?;
        let args = match call.get("args") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(args @ Value::Object(_)) => args.clone(),
            Some(other) => {
                return Err(invalid_value(
                    &format!("{at}.args"),
                    "type.googleapis.com/google.protobuf.Struct",
                    other,
                ));
            }
        };
        turn.chars += args.to_string().len();
        turn.calls.push((j, name, args, signature));
    }
    if let Some(response) = part.get("functionResponse") {
        let at = join(path, "functionResponse");
        let response = as_object(
            response,
            &at,
            "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionResponse",
        )?;
        let response = fields(
            response,
            &[
                "id",
                "name",
                "response",
                "willContinue",
                "scheduling",
                "parts",
            ],
            &at,
        )?;
        let name = required_name(&response, &at)?;
        match response.get("response") {
            Some(value @ Value::Object(_)) => turn.chars += value.to_string().len(),
            Some(other) => {
                return Err(invalid_value(
                    &format!("{at}.response"),
                    "type.googleapis.com/google.protobuf.Struct",
                    other,
                ));
            }
            None => {
                return Err(ApiError::invalid(format!(
                    "* GenerateContentRequest.{at}.response: response is not specified\n"
                )));
            }
        }
        turn.responses.push(name);
    }
    Ok(())
}

fn required_name(obj: &Map<String, Value>, at: &str) -> Result<String, ApiError> {
    match obj.get("name") {
        Some(Value::String(name)) if !name.is_empty() => Ok(name.clone()),
        Some(other @ (Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Object(_))) => {
            Err(invalid_value(&format!("{at}.name"), "TYPE_STRING", other))
        }
        _ => Err(ApiError::invalid(format!(
            "* GenerateContentRequest.{at}.name: name is not specified\n"
        ))),
    }
}

/// Function calls come after a user turn and are answered, in the next turn, by as many
/// function responses of the same names.
fn check_function_turns(turns: &[Turn]) -> Result<(), ApiError> {
    for (k, turn) in turns.iter().enumerate() {
        let previous = k.checked_sub(1).and_then(|p| turns.get(p));
        if !turn.calls.is_empty() {
            if turn.role != Role::Model {
                return Err(ApiError::invalid(
                    "Please ensure that function call turn comes immediately after a user turn \
                     or after a function response turn.",
                ));
            }
            if previous.is_none_or(|p| p.role != Role::User) {
                return Err(ApiError::invalid(
                    "Please ensure that function call turn comes immediately after a user turn \
                     or after a function response turn.",
                ));
            }
        }
        if turn.responses.is_empty() {
            if let Some(p) = previous
                && !p.calls.is_empty()
                && turn.role == Role::User
            {
                return Err(ApiError::invalid(
                    "Please ensure that the number of function response parts is equal to the \
                     number of function call parts of the function call turn.",
                ));
            }
            continue;
        }
        let calls = match previous {
            Some(p) if turn.role == Role::User && p.role == Role::Model && !p.calls.is_empty() => {
                &p.calls
            }
            _ => {
                return Err(ApiError::invalid(
                    "Please ensure that function response turn comes immediately after a \
                     function call turn.",
                ));
            }
        };
        if calls.len() != turn.responses.len() {
            return Err(ApiError::invalid(
                "Please ensure that the number of function response parts is equal to the number \
                 of function call parts of the function call turn.",
            ));
        }
        let mut pending: Vec<&str> = calls.iter().map(|(_, name, _, _)| name.as_str()).collect();
        for name in &turn.responses {
            match pending.iter().position(|p| p == name) {
                Some(at) => {
                    pending.remove(at);
                }
                None => {
                    return Err(ApiError::invalid(format!(
                        "* GenerateContentRequest.contents[{}]: function response `{name}` \
                         answers no function call of the previous turn (calls: {}).\n",
                        turn.index,
                        calls
                            .iter()
                            .map(|(_, n, _, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Every signature the fake issued must come back on the part it was issued on: the first
/// function call of a model turn with the same name and arguments.
fn check_signatures(turns: &[Turn], shared: &Shared) -> Result<(), ApiError> {
    for turn in turns.iter().filter(|t| t.role == Role::Model) {
        for (position, (j, name, args, signature)) in turn.calls.iter().enumerate() {
            match signature.as_deref() {
                Some(FOREIGN_SIGNATURE) => {}
                Some(signature) => match shared.signed_call(signature) {
                    Some(SignedCall { name: n, args: a }) if &n == name && &a == args => {}
                    _ => {
                        return Err(ApiError::invalid(format!(
                            "Corrupted thought signature at contents[{}].parts[{j}].",
                            turn.index
                        )));
                    }
                },
                None if position == 0 && shared.was_signed(name, args) => {
                    return Err(ApiError::invalid(format!(
                        "Function call is missing a thought_signature in functionCall parts. This \
                         is required for tools to work correctly, and missing thought_signature \
                         may lead to degraded model performance. Additional data, function call \
                         `default_api:{name}` , position {}. Please refer to \
                         https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                        turn.index + 1
                    )));
                }
                None => {}
            }
        }
    }
    Ok(())
}

fn check_generation_config(config: &Value) -> Result<(), ApiError> {
    let path = "generation_config";
    let config = as_object(
        config,
        path,
        "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig",
    )?;
    let config = fields(config, GENERATION_KEYS, path)?;
    if let Some(max) = config.get("maxOutputTokens")
        && max.as_i64().is_none()
    {
        return Err(invalid_value(
            &format!("{path}.max_output_tokens"),
            "TYPE_INT32",
            max,
        ));
    }
    if let Some(temperature) = config.get("temperature") {
        let Some(t) = temperature.as_f64() else {
            return Err(invalid_value(
                &format!("{path}.temperature"),
                "TYPE_FLOAT",
                temperature,
            ));
        };
        if !(0.0..=2.0).contains(&t) {
            return Err(ApiError::invalid(format!(
                "* GenerateContentRequest.{path}.temperature: temperature must be in the range \
                 [0.0, 2.0]\n"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_convert_between_camel_and_snake_case() {
        assert_eq!(snake("functionDeclarations"), "function_declarations");
        assert_eq!(camel("function_declarations"), "functionDeclarations");
        assert_eq!(camel("parts"), "parts");
    }
}
