//! Checks of `tools[].functionDeclarations`: function names and parameter schemas, which the
//! API parses as its OpenAPI-subset `Schema` message, refusing JSON-Schema-only keys
//! (`$schema`, `additionalProperties`, `$ref`, `const`, …) as unknown fields.

use serde_json::{Map, Value};

use super::errors::ApiError;
use super::validate::{as_array, as_object, fields, invalid_value};

/// The fields of `Tool`.
const TOOL_KEYS: &[&str] = &[
    "functionDeclarations",
    "googleSearch",
    "googleSearchRetrieval",
    "codeExecution",
    "urlContext",
    "computerUse",
    "fileSearch",
    "googleMaps",
];
/// The fields of `FunctionDeclaration`.
const DECLARATION_KEYS: &[&str] = &[
    "name",
    "description",
    "parameters",
    "parametersJsonSchema",
    "response",
    "responseJsonSchema",
    "behavior",
];
/// The fields of the v1beta `Schema` message.
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];
/// The values of `Type` (accepted in any case).
const SCHEMA_TYPES: &[&str] = &[
    "string", "number", "integer", "boolean", "array", "object", "null",
];

/// Checks the `tools` of a request.
pub(super) fn check(tools: &[Value]) -> Result<(), ApiError> {
    for (t, tool) in tools.iter().enumerate() {
        let path = format!("tools[{t}]");
        let tool = as_object(
            tool,
            &path,
            "type.googleapis.com/google.ai.generativelanguage.v1beta.Tool",
        )?;
        let tool = fields(tool, TOOL_KEYS, &path)?;
        let Some(declarations) = tool.get("functionDeclarations") else {
            continue;
        };
        let at = format!("{path}.function_declarations");
        for (d, declaration) in as_array(declarations, &at)?.iter().enumerate() {
            let at = format!("{at}[{d}]");
            let declaration = as_object(
                declaration,
                &at,
                "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionDeclaration",
            )?;
            let declaration = fields(declaration, DECLARATION_KEYS, &at)?;
            let name = declaration
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !valid_function_name(name) {
                return Err(ApiError::invalid(format!(
                    "* GenerateContentRequest.{at}.name: Invalid function name. Must start with a \
                     letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), \
                     dots (.), colons (:), or dashes (-), with a maximum length of 64.\n"
                )));
            }
            if let Some(parameters) = declaration.get("parameters") {
                let at = format!("{at}.parameters");
                check_schema(parameters, &at, true)?;
            }
        }
    }
    Ok(())
}

fn valid_function_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

fn check_schema(schema: &Value, path: &str, top: bool) -> Result<(), ApiError> {
    let obj = as_object(
        schema,
        path,
        "type.googleapis.com/google.ai.generativelanguage.v1beta.Schema",
    )?;
    let schema = fields(obj, SCHEMA_KEYS, path)?;
    let kind = match schema.get("type") {
        None => None,
        Some(Value::String(kind)) if SCHEMA_TYPES.contains(&kind.to_ascii_lowercase().as_str()) => {
            Some(kind.to_ascii_lowercase())
        }
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid_payload(
                &format!("{path}.type"),
                format!(
                    "Invalid JSON payload received. Proto field is not repeating, cannot start \
                     list at '{path}.type'."
                ),
            ));
        }
        Some(other) => {
            return Err(invalid_value(
                &format!("{path}.type"),
                "type.googleapis.com/google.ai.generativelanguage.v1beta.Type",
                other,
            ));
        }
    };
    if let Some(values) = schema.get("enum") {
        for (e, value) in as_array(values, &format!("{path}.enum"))?
            .iter()
            .enumerate()
        {
            if !value.is_string() {
                return Err(invalid_value(
                    &format!("{path}.enum[{e}]"),
                    "TYPE_STRING",
                    value,
                ));
            }
        }
    }
    let properties = match schema.get("properties") {
        Some(Value::Object(properties)) => Some(properties),
        Some(other) => {
            return Err(invalid_value(
                &format!("{path}.properties"),
                "type.googleapis.com/google.ai.generativelanguage.v1beta.Schema",
                other,
            ));
        }
        None => None,
    };
    if top && kind.as_deref() == Some("object") && properties.is_some_and(Map::is_empty) {
        return Err(ApiError::invalid(format!(
            "* GenerateContentRequest.{path}.properties: should be non-empty for OBJECT type\n"
        )));
    }
    for (p, (_, property)) in properties.into_iter().flatten().enumerate() {
        check_schema(property, &format!("{path}.properties[{p}].value"), false)?;
    }
    if let Some(required) = schema.get("required") {
        for (r, name) in as_array(required, &format!("{path}.required"))?
            .iter()
            .enumerate()
        {
            let known = name
                .as_str()
                .is_some_and(|n| properties.is_some_and(|p| p.contains_key(n)));
            if !known {
                return Err(ApiError::invalid(format!(
                    "* GenerateContentRequest.{path}.required[{r}]: property is not defined\n"
                )));
            }
        }
    }
    if let Some(items) = schema.get("items") {
        check_schema(items, &format!("{path}.items"), false)?;
    }
    if let Some(branches) = schema.get("anyOf") {
        for (b, branch) in as_array(branches, &format!("{path}.any_of"))?
            .iter()
            .enumerate()
        {
            check_schema(branch, &format!("{path}.any_of[{b}]"), false)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_follow_the_api_pattern() {
        for ok in ["get_weather", "_x", "a.b:c-d", &"a".repeat(64)] {
            assert!(valid_function_name(ok), "{ok}");
        }
        for bad in ["", "1abc", "has space", &"a".repeat(65), "é"] {
            assert!(!valid_function_name(bad), "{bad}");
        }
    }
}
