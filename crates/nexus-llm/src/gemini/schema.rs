//! Tool parameter schemas cleaned to the OpenAPI subset Gemini accepts.
//!
//! Tools describe their parameters in JSON Schema; `functionDeclarations[].parameters` takes a
//! `Schema` object and answers 400 "Unknown name …: Cannot find field" to any other key. The
//! cleaner keeps what the API accepts and rewrites what it can express differently:
//!
//! - kept: `type`, `description`, `title`, `nullable`, `enum` (strings), `properties`,
//!   `required` (only names present in `properties`), `items`, `anyOf`, `minItems`,
//!   `maxItems`, `minLength`, `maxLength`, `minProperties`, `maxProperties`, `minimum`,
//!   `maximum`, `pattern`, `example`, `propertyOrdering`, and `format` where the API gives it a
//!   meaning (`enum` and `date-time` for strings, `float`/`double`, `int32`/`int64`);
//! - rewritten: `$ref` to `#/$defs/…` or `#/definitions/…` is inlined (a recursive reference
//!   becomes a plain object); `const` becomes a one-value `enum`; `oneOf` becomes `anyOf`;
//!   `allOf` is merged; `type: [T, "null"]` and an `anyOf` branch of type `null` become
//!   `nullable: true`; other type lists become `anyOf`; tuple `items` become `items.anyOf`;
//!   non-string `enum` and `const` values move into the description;
//! - dropped: everything else, notably `$schema`, `$id`, `$defs`, `additionalProperties`,
//!   `patternProperties`, `examples`, `default` (the v1beta `Schema` accepts and ignores it;
//!   dropped so older API versions do not refuse it), `exclusiveMinimum`, `not`, `if`.
//!
//! A tool without parameters sends no `parameters` at all: the API refuses an `OBJECT` with
//! empty `properties`. This module does no I/O and knows nothing but schemas.

use serde_json::{Map, Value, json};

/// Deepest nesting followed; deeper schemas are cut to "anything".
const MAX_DEPTH: usize = 32;

/// The `parameters` to send for `schema`, `None` when the tool takes none.
pub(crate) fn parameters(schema: &Value) -> Option<Value> {
    let mut cleaner = Cleaner {
        root: schema,
        refs: Vec::new(),
    };
    let mut cleaned = cleaner.node(schema, 0);
    let has_properties = cleaned
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty());
    match cleaned.get("type").and_then(Value::as_str) {
        None if has_properties => {
            cleaned.insert("type".to_owned(), json!("object"));
        }
        None | Some("object") if !has_properties => return None,
        _ => {}
    }
    Some(Value::Object(cleaned))
}

struct Cleaner<'a> {
    root: &'a Value,
    /// The `$ref`s being inlined, to stop at a cycle.
    refs: Vec<&'a str>,
}

impl<'a> Cleaner<'a> {
    fn node(&mut self, node: &'a Value, depth: usize) -> Map<String, Value> {
        let mut out = Map::new();
        let Some(obj) = node.as_object() else {
            return out;
        };
        if depth > MAX_DEPTH {
            return out;
        }
        let mut notes: Vec<String> = Vec::new();
        for (key, value) in obj {
            match key.as_str() {
                "type" => self.types(value, &mut out),
                "description" | "title" | "pattern" => {
                    if let Some(text) = value.as_str() {
                        out.insert(key.clone(), json!(text));
                    }
                }
                "nullable" if value.as_bool() == Some(true) => {
                    out.insert(key.clone(), json!(true));
                }
                "minItems" | "maxItems" | "minLength" | "maxLength" | "minProperties"
                | "maxProperties" => {
                    if let Some(n) = value.as_u64() {
                        out.insert(key.clone(), json!(n));
                    }
                }
                "minimum" | "maximum" if value.is_number() => {
                    out.insert(key.clone(), value.clone());
                }
                "example" => {
                    out.insert(key.clone(), value.clone());
                }
                "propertyOrdering"
                    if value
                        .as_array()
                        .is_some_and(|names| names.iter().all(Value::is_string)) =>
                {
                    out.insert(key.clone(), value.clone());
                }
                "enum" => match value.as_array() {
                    Some(items) if !items.is_empty() && items.iter().all(Value::is_string) => {
                        out.insert(key.clone(), value.clone());
                    }
                    Some(items) if !items.is_empty() => notes.push(format!(
                        "Allowed values: {}.",
                        items
                            .iter()
                            .map(Value::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                    _ => {}
                },
                "const" => match value {
                    Value::String(_) => {
                        out.insert("enum".to_owned(), json!([value]));
                    }
                    other => notes.push(format!("Must be {other}.")),
                },
                "properties" => {
                    let mut properties = Map::new();
                    for (name, schema) in value.as_object().into_iter().flatten() {
                        properties
                            .insert(name.clone(), Value::Object(self.node(schema, depth + 1)));
                    }
                    if !properties.is_empty() {
                        out.insert(key.clone(), Value::Object(properties));
                    }
                }
                "items" => match value {
                    Value::Object(_) => {
                        out.insert(key.clone(), Value::Object(self.node(value, depth + 1)));
                    }
                    Value::Array(tuple) if !tuple.is_empty() => {
                        let branches = tuple
                            .iter()
                            .map(|item| Value::Object(self.node(item, depth + 1)))
                            .collect();
                        out.insert(key.clone(), any_of(branches));
                    }
                    _ => {}
                },
                "anyOf" | "oneOf" => {
                    let branches = value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|branch| Value::Object(self.node(branch, depth + 1)))
                        .collect();
                    self.branches(branches, &mut out);
                }
                _ => {}
            }
        }
        // Referenced and `allOf` schemas fill in what the node itself does not say.
        if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
            self.inline_ref(reference, depth, &mut out);
        }
        for part in obj
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let part = self.node(part, depth + 1);
            merge(&mut out, part);
        }
        if out.contains_key("enum") && !out.contains_key("type") {
            out.insert("type".to_owned(), json!("string"));
        }
        if let Some(format) = obj.get("format").and_then(Value::as_str) {
            let kept = matches!(
                (out.get("type").and_then(Value::as_str), format),
                (Some("string"), "enum" | "date-time")
                    | (Some("number"), "float" | "double")
                    | (Some("integer"), "int32" | "int64")
            );
            if kept {
                out.insert("format".to_owned(), json!(format));
            }
        }
        keep_known_required(obj.get("required"), &mut out);
        if !notes.is_empty() {
            let mut text = out
                .get("description")
                .and_then(Value::as_str)
                .map(|d| format!("{d} "))
                .unwrap_or_default();
            text.push_str(&notes.join(" "));
            out.insert("description".to_owned(), json!(text));
        }
        out
    }

    /// Inlines `#/$defs/Name` or `#/definitions/Name`; a cycle or an unknown target becomes a
    /// plain object.
    fn inline_ref(&mut self, reference: &'a str, depth: usize, out: &mut Map<String, Value>) {
        let target = reference
            .strip_prefix("#/$defs/")
            .map(|name| ("$defs", name))
            .or_else(|| {
                reference
                    .strip_prefix("#/definitions/")
                    .map(|name| ("definitions", name))
            })
            .and_then(|(section, name)| self.root.get(section)?.get(name));
        match target {
            Some(target) if !self.refs.contains(&reference) => {
                self.refs.push(reference);
                let inlined = self.node(target, depth + 1);
                self.refs.pop();
                merge(out, inlined);
            }
            _ => {
                out.entry("type").or_insert_with(|| json!("object"));
            }
        }
    }

    fn types(&mut self, value: &Value, out: &mut Map<String, Value>) {
        let names: Vec<String> = match value {
            Value::String(name) => vec![name.to_ascii_lowercase()],
            Value::Array(names) => names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect(),
            _ => return,
        };
        let nullable = names.iter().any(|n| n == "null");
        let real: Vec<&String> = names.iter().filter(|n| *n != "null").collect();
        match real.as_slice() {
            [] => {}
            [one] => {
                out.insert("type".to_owned(), json!(one));
            }
            many => {
                let branches = many.iter().map(|n| json!({"type": n})).collect();
                self.branches(branches, out);
            }
        }
        if nullable {
            out.insert("nullable".to_owned(), json!(true));
        }
    }

    /// Sets `anyOf` from cleaned `branches`: `null` branches become `nullable`, a single
    /// remaining branch is merged in place.
    fn branches(&mut self, branches: Vec<Value>, out: &mut Map<String, Value>) {
        let mut kept = Vec::new();
        for branch in branches {
            let is_null = branch.get("type").and_then(Value::as_str).is_none()
                && branch.get("nullable") == Some(&json!(true))
                && branch.as_object().is_some_and(|b| b.len() == 1);
            if is_null {
                out.insert("nullable".to_owned(), json!(true));
            } else {
                kept.push(branch);
            }
        }
        match kept.len() {
            0 => {}
            1 => {
                if let Some(Value::Object(only)) = kept.pop() {
                    merge(out, only);
                }
            }
            _ => {
                out.insert("anyOf".to_owned(), Value::Array(kept));
            }
        }
    }
}

/// `{"anyOf": branches}`, or the branch itself when there is one.
fn any_of(mut branches: Vec<Value>) -> Value {
    if branches.len() == 1
        && let Some(only) = branches.pop()
    {
        return only;
    }
    json!({"anyOf": branches})
}

/// Adds `from` into `into`: properties and required names are united, other keys already in
/// `into` win.
fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        match (key.as_str(), into.get_mut(&key), value) {
            ("properties", Some(Value::Object(mine)), Value::Object(theirs)) => {
                for (name, schema) in theirs {
                    mine.entry(name).or_insert(schema);
                }
            }
            ("required", Some(Value::Array(mine)), Value::Array(theirs)) => {
                for name in theirs {
                    if !mine.contains(&name) {
                        mine.push(name);
                    }
                }
            }
            (_, Some(_), _) => {}
            (_, None, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// Keeps the `required` names (from the source node and merged parts) that name a property.
fn keep_known_required(source: Option<&Value>, out: &mut Map<String, Value>) {
    let mut names: Vec<Value> = match out.remove("required") {
        Some(Value::Array(names)) => names,
        _ => Vec::new(),
    };
    for name in source.and_then(Value::as_array).into_iter().flatten() {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let properties = out.get("properties").and_then(Value::as_object);
    names.retain(|name| {
        name.as_str()
            .is_some_and(|n| properties.is_some_and(|p| p.contains_key(n)))
    });
    if !names.is_empty() {
        out.insert("required".to_owned(), Value::Array(names));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_schema_only_keys_are_dropped_and_the_rest_is_kept() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "city": {"type": "string", "description": "City name", "minLength": 1,
                         "examples": ["Paris"], "default": "Paris", "format": "uri"},
                "when": {"type": "string", "format": "date-time"},
                "days": {"type": "integer", "minimum": 1, "maximum": 14, "exclusiveMaximum": 15},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}
            },
            "required": ["city", "ghost"]
        });
        assert_eq!(
            parameters(&schema).unwrap(),
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name", "minLength": 1},
                    "when": {"type": "string", "format": "date-time"},
                    "days": {"type": "integer", "minimum": 1, "maximum": 14},
                    "tags": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["city"]
            })
        );
    }

    #[test]
    fn refs_are_inlined_and_recursion_stops() {
        let schema = json!({
            "type": "object",
            "properties": {
                "home": {"$ref": "#/$defs/Address", "description": "Where they live"},
                "tree": {"$ref": "#/definitions/Node"}
            },
            "$defs": {"Address": {"type": "object", "properties": {"street": {"type": "string"}},
                                  "required": ["street"], "additionalProperties": false}},
            "definitions": {"Node": {"type": "object",
                                     "properties": {"child": {"$ref": "#/definitions/Node"}}}}
        });
        let cleaned = parameters(&schema).unwrap();
        assert_eq!(
            cleaned["properties"]["home"],
            json!({"type": "object", "description": "Where they live",
                   "properties": {"street": {"type": "string"}}, "required": ["street"]})
        );
        assert_eq!(
            cleaned["properties"]["tree"]["properties"]["child"],
            json!({"type": "object"})
        );
        assert!(cleaned.get("$defs").is_none() && cleaned.get("definitions").is_none());
    }

    #[test]
    fn const_one_of_all_of_and_nullable_types_are_rewritten() {
        let schema = json!({
            "type": "object",
            "properties": {
                "mode": {"const": "fast"},
                "level": {"type": "integer", "enum": [1, 2, 3], "description": "Level."},
                "note": {"type": ["string", "null"]},
                "id": {"type": ["string", "integer"]},
                "target": {"oneOf": [{"type": "string"}, {"type": "null"}]},
                "shape": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                "both": {"allOf": [
                    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "number"}}, "required": ["b"]}
                ]},
                "pair": {"type": "array", "items": [{"type": "string"}, {"type": "number"}]}
            }
        });
        let p = &parameters(&schema).unwrap()["properties"];
        assert_eq!(p["mode"], json!({"type": "string", "enum": ["fast"]}));
        assert_eq!(
            p["level"],
            json!({"type": "integer", "description": "Level. Allowed values: 1, 2, 3."})
        );
        assert_eq!(p["note"], json!({"type": "string", "nullable": true}));
        assert_eq!(
            p["id"],
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
        );
        assert_eq!(p["target"], json!({"type": "string", "nullable": true}));
        assert_eq!(
            p["shape"],
            json!({"anyOf": [{"type": "string"}, {"type": "number"}]})
        );
        assert_eq!(
            p["both"],
            json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "number"}},
                   "required": ["a", "b"]})
        );
        assert_eq!(
            p["pair"],
            json!({"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "number"}]}})
        );
    }

    #[test]
    fn a_tool_without_parameters_sends_none() {
        assert_eq!(
            parameters(&json!({"type": "object", "properties": {}})),
            None
        );
        assert_eq!(
            parameters(&json!({"type": "object", "additionalProperties": false})),
            None
        );
        assert_eq!(parameters(&json!({})), None);
        assert_eq!(parameters(&Value::Null), None);
        assert_eq!(
            parameters(&json!({"properties": {"q": {"type": "string"}}})),
            Some(json!({"type": "object", "properties": {"q": {"type": "string"}}}))
        );
    }

    #[test]
    fn absurd_nesting_is_cut_not_a_stack_overflow() {
        let mut schema = json!({"type": "string"});
        for _ in 0..200 {
            schema = json!({"type": "object", "properties": {"x": schema}});
        }
        let cleaned = parameters(&schema).unwrap();
        assert_eq!(cleaned["type"], "object");
    }
}
