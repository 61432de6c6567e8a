//! Names: the rule for server names, and the names a server's tools get in Nexus
//! (`{server}__{tool}`, only `[a-zA-Z0-9_-]`, at most 64 characters, unique).
//!
//! A tool whose name fits keeps it. A name that had to be shortened, or that would be the same
//! as another tool's after characters were replaced, ends with `_` and eight hex digits of a
//! hash of the original name: stable across restarts and list changes, so agents can keep
//! allowing a tool by its full name.

use std::collections::{HashMap, HashSet};

use crate::executor::SOURCE_SEPARATOR;

/// Longest server name: leaves at least 30 characters for the tool's own name.
pub const MAX_SERVER_NAME: usize = 32;

/// Longest tool name models accept.
pub const MAX_TOOL_NAME: usize = 64;

/// Checks a server name: `[a-z0-9_-]`, 1 to [`MAX_SERVER_NAME`] characters, no `__`.
pub(crate) fn check_server_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > MAX_SERVER_NAME {
        return Err("it is too long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err("it has other characters");
    }
    if name.contains(SOURCE_SEPARATOR) {
        return Err("it contains `__`");
    }
    Ok(())
}

/// The Nexus names of `tools` (a server's own names, in its order), one per tool.
pub(crate) fn namespaced(server: &str, tools: &[&str]) -> Vec<String> {
    let prefix = format!("{server}{SOURCE_SEPARATOR}");
    let plain: Vec<String> = tools
        .iter()
        .map(|t| {
            let clean = sanitize(t);
            format!("{prefix}{}", if clean.is_empty() { "tool" } else { &clean })
        })
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for name in &plain {
        *counts.entry(name).or_default() += 1;
    }
    let mut used = HashSet::new();
    let mut out = Vec::with_capacity(tools.len());
    for (original, name) in tools.iter().zip(&plain) {
        let clash = counts.get(name.as_str()).copied().unwrap_or(0) > 1;
        let mut candidate = if name.len() > MAX_TOOL_NAME || clash {
            hashed(name, original, 0)
        } else {
            name.clone()
        };
        let mut salt = 1;
        while used.contains(&candidate) {
            candidate = hashed(name, original, salt);
            salt += 1;
        }
        used.insert(candidate.clone());
        out.push(candidate);
    }
    out
}

/// `name` cut to leave room for `_` and eight hex digits of the hash of `original` (and
/// `salt`, for the rare hash collision).
fn hashed(name: &str, original: &str, salt: u32) -> String {
    let suffix = format!("_{:08x}", fnv1a(original, salt));
    // `name` is ASCII after sanitizing: any byte index is a char boundary.
    let keep = name.len().min(MAX_TOOL_NAME - suffix.len());
    format!("{}{suffix}", &name[..keep])
}

/// Replaces every character outside `[a-zA-Z0-9_-]` with `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// 32-bit FNV-1a: small, stable across releases and platforms.
fn fnv1a(text: &str, salt: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes().chain(salt.to_le_bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_prefixed_with_the_server() {
        assert_eq!(
            namespaced("files", &["read_file", "list-dir"]),
            ["files__read_file", "files__list-dir"]
        );
    }

    #[test]
    fn other_characters_become_underscores_and_clashes_get_stable_suffixes() {
        let names = namespaced("s", &["get.user", "get user", "ok"]);
        assert_eq!(names[2], "s__ok");
        assert_ne!(names[0], names[1]);
        for name in &names[..2] {
            assert!(name.starts_with("s__get_user_"), "{name}");
            assert_eq!(name.len(), "s__get_user_".len() + 8);
        }
        // The same tool keeps its name when the list changes around it.
        let again = namespaced("s", &["ok", "get user", "get.user"]);
        assert_eq!(again[1], names[1]);
        assert_eq!(again[2], names[0]);
    }

    #[test]
    fn long_names_are_cut_to_64_characters_and_stay_distinct() {
        let a = format!("{}_alpha", "x".repeat(80));
        let b = format!("{}_beta", "x".repeat(80));
        let names = namespaced("server", &[&a, &b]);
        for name in &names {
            assert_eq!(name.len(), MAX_TOOL_NAME, "{name}");
            assert!(name.starts_with("server__xxx"));
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            );
        }
        assert_ne!(names[0], names[1]);
    }

    #[test]
    fn an_empty_tool_name_still_gets_a_tool_part() {
        assert_eq!(namespaced("s", &[""]), ["s__tool"]);
    }
}
