//! Tools end to end, as a new user meets them: a real server configured by a TOML file, an agent
//! created over gRPC with its tools, the fake model calling them, and the real backends: a
//! Docker engine with the locally built sandbox image (`scripts/services/docker.sh`), Chromium
//! (`scripts/services/chromium.sh`) and S3 (`scripts/services/moto.sh`).
//!
//! A test whose service is missing skips with a note, or fails under `CI=true`.

#![allow(clippy::unwrap_used, unreachable_pub)]

mod common;

use std::time::Duration;

use common::{TestServer, authed, chat};
use nexus_gateway::pb;
use nexus_gateway::pb::chat_event::Event;
use nexus_testkit::openai::Reply;
use serde_json::json;

/// The value of `var`, or `None` (with a note) when unset outside CI.
fn service(var: &str, script: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_owned()),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{var} is not set and CI=true: run `eval \"$({script})\"` first"
            );
            eprintln!("skipping: {var} is not set (run `eval \"$({script})\"`)");
            None
        }
    }
}

fn docker() -> Option<(String, String)> {
    let host = service("NEXUS_TEST_DOCKER_HOST", "scripts/services/docker.sh")?;
    let image = service("NEXUS_TEST_SANDBOX_IMAGE", "scripts/services/docker.sh")?;
    Some((host, image))
}

/// The `[tools.sandbox]` section for the test engine and image.
fn sandbox_toml(host: &str, image: &str) -> String {
    format!(
        "[tools.sandbox]\nbackend = \"docker\"\n[tools.sandbox.docker]\nsocket = \"{host}\"\n\
         image = \"{image}\"\n"
    )
}

/// Everything one chat streamed.
struct Streamed {
    text: String,
    finished: Vec<pb::ToolCallFinished>,
    last: Event,
}

async fn stream_chat(server: &TestServer, agent: &str, session: &str, text: &str) -> Streamed {
    let mut client = server.client().await;
    let mut stream = client
        .chat(authed(&server.admin_key, chat(agent, session, text)))
        .await
        .unwrap()
        .into_inner();
    let mut out = Streamed {
        text: String::new(),
        finished: Vec::new(),
        last: Event::TextDelta(pb::TextDelta::default()),
    };
    while let Some(event) = tokio::time::timeout(Duration::from_secs(120), stream.message())
        .await
        .expect("the turn ends within two minutes")
        .unwrap()
    {
        match event.event.unwrap() {
            Event::TextDelta(d) => out.text.push_str(&d.text),
            Event::ToolCallFinished(f) => out.finished.push(f),
            e @ (Event::Done(_) | Event::Error(_)) => {
                out.last = e;
                return out;
            }
            _ => {}
        }
    }
    panic!("the chat stream ended without done or error");
}

async fn create_agent(server: &TestServer, name: &str, tools: &[&str]) {
    let mut client = server.client().await;
    client
        .create_agent(authed(
            &server.admin_key,
            pb::CreateAgentRequest {
                name: name.into(),
                tools: tools.iter().map(|t| (*t).to_owned()).collect(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
}

/// The tool message the model got back in its last request.
fn tool_result_sent_to_model(server: &TestServer) -> String {
    let body = server.fake.last_request().unwrap().body;
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .expect("the tool result went back to the model")
}

const FIBONACCI: &str = r#"
import socket
a, b = 0, 1
for _ in range(20):
    a, b = b, a + b
print("fib20 =", a)
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    print("network: open")
except OSError as e:
    print("network: blocked")
"#;

#[tokio::test]
async fn an_agent_with_code_computes_the_20th_fibonacci_number_in_a_container_without_network() {
    let Some((host, image)) = docker() else {
        return;
    };
    let config = format!(
        "[tools]\nenable = [\"code\", \"web_fetch\"]\n{}",
        sandbox_toml(&host, &image)
    );
    let server = TestServer::start_with_config(&config).await;
    create_agent(&server, "mathematician", &["code", "web_fetch"]).await;
    server.fake.push(Reply::tool_calls(vec![(
        "code",
        json!({"language": "python", "code": FIBONACCI}),
    )]));
    server
        .fake
        .push(Reply::text("The 20th Fibonacci number is 6765."));

    let out = stream_chat(
        &server,
        "mathematician",
        "",
        "compute the 20th Fibonacci number",
    )
    .await;
    assert!(matches!(out.last, Event::Done(_)), "{:?}", out.last);
    assert_eq!(out.text, "The 20th Fibonacci number is 6765.");
    let call = &out.finished[0];
    assert_eq!(call.name, "code");
    assert!(!call.is_error, "{}", call.output);
    assert!(call.output.contains("fib20 = 6765"), "{}", call.output);
    assert!(call.output.contains("network: blocked"), "{}", call.output);
    // The model answered from what the container printed.
    assert!(tool_result_sent_to_model(&server).contains("fib20 = 6765"));
    server.server.shutdown().await;
}

#[tokio::test]
async fn files_written_by_code_come_back_with_the_answer_from_s3() {
    let Some((host, image)) = docker() else {
        return;
    };
    let Some(endpoint) = service("NEXUS_TEST_S3_ENDPOINT", "scripts/services/moto.sh") else {
        return;
    };
    let bucket = format!("nexus-tools-{}", uuid::Uuid::new_v4().simple());
    reqwest::Client::new()
        .put(format!("{}/{bucket}", endpoint.trim_end_matches('/')))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    // The server reads S3 credentials from the process environment; moto takes any, so the
    // variable naming the endpoint (set whenever this test runs) stands in for both.
    let config = format!(
        "[storage]\nkind = \"s3\"\nendpoint = \"{endpoint}\"\nbucket = \"{bucket}\"\n\
         allow_http = true\naccess_key_id_env = \"NEXUS_TEST_S3_ENDPOINT\"\n\
         secret_access_key_env = \"NEXUS_TEST_S3_ENDPOINT\"\n\
         [tools]\nenable = [\"code\"]\n{}",
        sandbox_toml(&host, &image)
    );
    let server = TestServer::start_with_config(&config).await;
    create_agent(&server, "writer", &["code"]).await;
    server.fake.push(Reply::tool_calls(vec![(
        "code",
        json!({"language": "shell", "code": "mkdir -p /work/out && echo 'a,b' > /work/out/table.csv"}),
    )]));
    server.fake.push(Reply::text("Here is your table."));

    let out = stream_chat(&server, "writer", "", "make me a table").await;
    assert!(matches!(out.last, Event::Done(_)), "{:?}", out.last);
    let files = &out.finished[0].attachments;
    assert_eq!(files.len(), 1, "{:?}", out.finished[0]);
    assert_eq!(files[0].filename, "table.csv");
    let body = reqwest::get(&files[0].url).await.unwrap();
    assert!(body.status().is_success());
    assert_eq!(body.text().await.unwrap(), "a,b\n");

    // The answer carries the file too (channels send it; the history lists it).
    let Event::Done(done) = out.last else {
        unreachable!()
    };
    let history = server
        .client()
        .await
        .get_session(authed(
            &server.admin_key,
            pb::GetSessionRequest {
                session_id: done.session_id,
                after_seq: 0,
                limit: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let answer = history.messages.last().unwrap();
    assert_eq!(answer.attachments.len(), 1);
    assert_eq!(answer.attachments[0].filename, "table.csv");
    server.server.shutdown().await;
}

#[tokio::test]
async fn fetching_the_cloud_metadata_address_is_refused() {
    let server = TestServer::start_with_config("[tools]\nenable = [\"web_fetch\"]\n").await;
    create_agent(&server, "reader", &["web_fetch"]).await;
    server.fake.push(Reply::tool_calls(vec![(
        "web_fetch",
        json!({"url": "http://169.254.169.254/latest/meta-data/"}),
    )]));
    server.fake.push(Reply::text("I cannot read that address."));

    let out = stream_chat(&server, "reader", "", "what is at 169.254.169.254?").await;
    assert!(matches!(out.last, Event::Done(_)), "{:?}", out.last);
    let call = &out.finished[0];
    assert!(call.is_error);
    assert!(call.output.contains("refused"), "{}", call.output);
    assert!(call.output.contains("169.254.169.254"), "{}", call.output);
    server.server.shutdown().await;
}

/// A page with a solid colour, served on 127.0.0.1.
async fn serve_page() -> std::net::SocketAddr {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/",
        get(|| async {
            axum::response::Html(
                "<html><head><title>Status</title></head>\
                 <body style=\"background:#00ff00\"><h1>All systems go</h1></body></html>",
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn a_browser_screenshot_comes_back_as_an_image() {
    let Some(chromium) = service("NEXUS_TEST_CHROMIUM", "scripts/services/chromium.sh") else {
        return;
    };
    let page = serve_page().await;
    let config = format!(
        "[tools]\nenable = [\"browser\"]\nallow = [\"127.0.0.1/32\"]\n\
         [tools.browser]\nexecutable = \"{chromium}\"\n"
    );
    let server = TestServer::start_with_config(&config).await;
    create_agent(&server, "looker", &["browser"]).await;
    server.fake.push(Reply::tool_calls(vec![(
        "browser",
        json!({"action": "navigate", "url": format!("http://{page}/")}),
    )]));
    server.fake.push(Reply::tool_calls(vec![(
        "browser",
        json!({"action": "screenshot"}),
    )]));
    server.fake.push(Reply::text("Here is the page."));

    let out = stream_chat(&server, "looker", "", "show me the status page").await;
    assert!(matches!(out.last, Event::Done(_)), "{:?}", out.last);
    assert!(
        out.finished[0].output.contains("All systems go"),
        "{}",
        out.finished[0].output
    );
    let shot = &out.finished[1];
    assert!(!shot.is_error, "{}", shot.output);
    assert_eq!(shot.attachments.len(), 1);
    assert_eq!(shot.attachments[0].content_type, "image/png");
    let bytes = reqwest::get(&shot.attachments[0].url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG came back");
    server.server.shutdown().await;
}

#[tokio::test]
async fn cancelling_a_turn_stops_its_running_code() {
    let Some((host, image)) = docker() else {
        return;
    };
    let config = format!(
        "[tools]\nenable = [\"code\"]\n{}",
        sandbox_toml(&host, &image)
    );
    let server = TestServer::start_with_config(&config).await;
    create_agent(&server, "sleeper", &["code"]).await;
    server.fake.push(Reply::tool_calls(vec![(
        "code",
        json!({"language": "shell", "code": "sleep 25; echo woke"}),
    )]));

    let mut client = server.client().await;
    let mut stream = client
        .chat(authed(&server.admin_key, chat("sleeper", "", "sleep")))
        .await
        .unwrap()
        .into_inner();
    let mut session = String::new();
    loop {
        match stream.message().await.unwrap().unwrap().event.unwrap() {
            Event::Started(s) => session = s.session_id,
            Event::ToolCallStarted(_) => break,
            _ => {}
        }
    }
    // Give the container a moment to start, then cancel.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let cancelled = client
        .cancel_turn(authed(
            &server.admin_key,
            pb::CancelTurnRequest {
                session_id: session,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!cancelled.turn_id.is_empty());
    let last = loop {
        if let e @ (Event::Done(_) | Event::Error(_)) =
            stream.message().await.unwrap().unwrap().event.unwrap()
        {
            break e;
        }
    };
    assert!(
        matches!(&last, Event::Error(e) if e.kind == "cancelled"),
        "{last:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(15), "stopped early");
    server.server.shutdown().await;
}
