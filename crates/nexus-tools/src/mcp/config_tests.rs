//! Tests of the configuration: validation, defaults, redaction.

use super::*;

fn stdio(name: &str) -> McpServerConfig {
    McpServerConfig {
        name: name.to_owned(),
        command: Some("mcp-server".to_owned()),
        ..McpServerConfig::default()
    }
}

#[test]
fn a_server_needs_exactly_one_of_command_and_url() {
    let mut both = stdio("files");
    both.url = Some("http://127.0.0.1:1/mcp".to_owned());
    let err = McpServerSettings::try_from(both).unwrap_err();
    assert!(
        err.to_string().contains("either `command` or `url`"),
        "{err}"
    );
    let neither = McpServerConfig {
        name: "files".to_owned(),
        ..McpServerConfig::default()
    };
    let err = McpServerSettings::try_from(neither).unwrap_err();
    assert!(matches!(err, McpConfigError::NoTransport { .. }), "{err}");
    assert!(McpServerSettings::try_from(stdio("files")).is_ok());
}

#[test]
fn bad_names_are_refused_with_the_rule() {
    for bad in ["", "Files", "a__b", "a b", "é", &"x".repeat(33)] {
        let err = McpServerSettings::try_from(stdio(bad)).unwrap_err();
        assert!(
            matches!(err, McpConfigError::InvalidName { .. }),
            "{bad}: {err}"
        );
        assert!(err.to_string().contains("lower-case letters"), "{err}");
    }
    assert!(McpServerSettings::try_from(stdio("git-hub_2")).is_ok());
}

#[test]
fn keys_of_the_other_transport_are_refused() {
    let mut c = stdio("files");
    c.bearer_token = Some(SecretString::from("t".to_owned()));
    let err = McpServerSettings::try_from(c).unwrap_err();
    assert!(
        err.to_string().contains("`bearer_token` applies only"),
        "{err}"
    );
    let mut c = stdio("files");
    c.health_check_secs = Some(5);
    let err = McpServerSettings::try_from(c).unwrap_err();
    assert!(
        err.to_string()
            .contains("`health_check_secs` applies only to servers with `url`"),
        "{err}"
    );
    let c = McpServerConfig {
        name: "web".to_owned(),
        url: Some("ftp://example.invalid/".to_owned()),
        ..McpServerConfig::default()
    };
    let err = McpServerSettings::try_from(c).unwrap_err();
    assert!(err.to_string().contains("http:// or https://"), "{err}");
}

#[test]
fn secrets_never_reach_debug() {
    let mut c = stdio("files");
    c.env.insert(
        "API_KEY".to_owned(),
        SecretString::from("s3cret-env".to_owned()),
    );
    let debug = format!(
        "{c:?} {:?}",
        McpServerSettings::try_from(c.clone()).unwrap()
    );
    assert!(
        debug.contains("API_KEY") && !debug.contains("s3cret-env"),
        "{debug}"
    );
    let c = McpServerConfig {
        name: "web".to_owned(),
        url: Some("http://127.0.0.1:1/mcp".to_owned()),
        headers: BTreeMap::from([(
            "x-api-key".to_owned(),
            SecretString::from("s3cret-header".to_owned()),
        )]),
        bearer_token: Some(SecretString::from("s3cret-token".to_owned())),
        ..McpServerConfig::default()
    };
    let debug = format!(
        "{c:?} {:?}",
        McpServerSettings::try_from(c.clone()).unwrap()
    );
    assert!(debug.contains("x-api-key"), "{debug}");
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[test]
fn reserved_and_conflicting_headers_are_refused() {
    let mut c = McpServerConfig {
        name: "web".to_owned(),
        url: Some("http://127.0.0.1:1/mcp".to_owned()),
        ..McpServerConfig::default()
    };
    c.headers.insert(
        "Mcp-Session-Id".to_owned(),
        SecretString::from("x".to_owned()),
    );
    assert!(McpServerSettings::try_from(c.clone()).is_err());
    c.headers.clear();
    c.headers.insert(
        "Authorization".to_owned(),
        SecretString::from("x".to_owned()),
    );
    c.bearer_token = Some(SecretString::from("t".to_owned()));
    let err = McpServerSettings::try_from(c).unwrap_err();
    assert!(
        err.to_string().contains("conflicts with `bearer_token`"),
        "{err}"
    );
}

#[test]
fn config_parses_from_json_with_defaults_and_refuses_unknown_keys() {
    let c: McpServerConfig =
        serde_json::from_str(r#"{"name":"files","command":"srv","args":["-v"]}"#).unwrap();
    let s = McpServerSettings::try_from(c).unwrap();
    assert_eq!(s.startup_timeout, Duration::from_secs(30));
    assert_eq!(s.call_timeout, Duration::from_secs(60));
    assert_eq!(
        s.health_check, None,
        "stdio servers are watched, not pinged"
    );
    assert_eq!(
        (s.backoff_min, s.backoff_max),
        (Duration::from_secs(1), Duration::from_secs(60))
    );
    let c: McpServerConfig =
        serde_json::from_str(r#"{"name":"web","url":"https://mcp.example.invalid/mcp"}"#).unwrap();
    let s = McpServerSettings::try_from(c).unwrap();
    assert_eq!(s.health_check, Some(Duration::from_secs(30)));
    let err = serde_json::from_str::<McpServerConfig>(r#"{"name":"f","comand":"x"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `comand`"), "{err}");
}
