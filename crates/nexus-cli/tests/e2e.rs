//! The `nexus` binary as a user runs it: a server started in an empty directory with no
//! configuration, the CLI chatting with it, restarts, and a `kill -9` in the middle of a turn.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error"
)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nexus_testkit::FakeAnthropic;
use nexus_testkit::openai::{FakeOpenAi, Reply};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_nexus");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    grpc: String,
    stdout: Vec<String>,
}

struct Ports {
    grpc: u16,
    http: u16,
}

/// Starts `nexus serve` in `dir` (data in `dir/nexus-data`) and waits for its ready line.
async fn serve(dir: &Path, ports: &Ports, fake: &FakeOpenAi) -> Server {
    serve_with(dir, ports, fake, &[]).await
}

/// [`serve`] with more environment variables.
async fn serve_with(
    dir: &Path,
    ports: &Ports,
    fake: &FakeOpenAi,
    env: &[(&str, String)],
) -> Server {
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NEXUS_GRPC_ADDR", format!("127.0.0.1:{}", ports.grpc))
        .env("NEXUS_HTTP_ADDR", format!("127.0.0.1:{}", ports.http))
        .env("OPENAI_API_KEY", fake.api_key())
        .env("OPENAI_BASE_URL", fake.base_url())
        .env("NEXUS_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = Vec::new();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.starts_with("Nexus ready");
            stdout.push(line);
            if done {
                return;
            }
        }
        panic!("server exited before it was ready: {stdout:?}");
    })
    .await;
    assert!(ready.is_ok(), "server not ready within 30 s");
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server {
        child,
        grpc: format!("http://127.0.0.1:{}", ports.grpc),
        stdout,
    }
}

impl Server {
    async fn stop(mut self) {
        let pid = self.child.id().unwrap().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("server did not stop on SIGTERM")
            .unwrap();
        assert!(status.success(), "graceful shutdown exits 0, got {status}");
    }

    async fn kill9(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// Runs a client command of the CLI in `dir` against `server`.
async fn cli(dir: &Path, server: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--server")
        .arg(server)
        .current_dir(dir)
        .env_remove("NEXUS_API_KEY")
        .env_remove("NEXUS_DATA_DIR")
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn session_id_of(list_output: &str) -> String {
    list_output
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("a session row")
        .to_owned()
}

#[tokio::test]
async fn fresh_start_chats_and_keeps_the_conversation_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeOpenAi::start().await;
    let ports = Ports {
        grpc: free_port(),
        http: free_port(),
    };
    let server = serve(dir.path(), &ports, &fake).await;
    let banner = server.stdout.join("\n");
    assert!(banner.contains("Admin API key"), "{banner}");
    let key = std::fs::read_to_string(dir.path().join("nexus-data/admin.key")).unwrap();
    assert!(
        banner.contains(key.trim()),
        "the printed key is the saved key"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("nexus-data/admin.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(dir.path().join("nexus-data/master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    fake.push(Reply::text("Hello from the fake model."));
    let (ok, out, err) = cli(dir.path(), &server.grpc, &["chat", "-m", "hello"]).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "Hello from the fake model.");
    server.stop().await;

    let server = serve(dir.path(), &ports, &fake).await;
    assert!(
        !server.stdout.join("\n").contains("Admin API key"),
        "the key is shown only once"
    );
    let (ok, out, err) = cli(dir.path(), &server.grpc, &["session", "list"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("hello"), "{out}");
    let id = session_id_of(&out);
    let (ok, out, err) = cli(dir.path(), &server.grpc, &["session", "show", &id]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("hello") && out.contains("Hello from the fake model."),
        "{out}"
    );

    // The conversation continues in the same session.
    let (ok, out, _) = cli(
        dir.path(),
        &server.grpc,
        &["chat", "--session", &id, "-m", "again"],
    )
    .await;
    assert!(ok);
    assert_eq!(out.trim(), "You said: again");
    server.stop().await;
}

#[tokio::test]
async fn kill_9_mid_turn_then_restart_answers_the_message_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeOpenAi::start().await;
    let ports = Ports {
        grpc: free_port(),
        http: free_port(),
    };
    let server = serve(dir.path(), &ports, &fake).await;
    // The model hangs: the turn is in flight when the server dies.
    fake.push(Reply::text("never delivered").first_byte_delay(Duration::from_secs(60)));
    let grpc = server.grpc.clone();
    let path = dir.path().to_owned();
    let chat =
        tokio::spawn(async move { cli(&path, &grpc, &["chat", "-m", "survive this"]).await });
    for _ in 0..500 {
        if fake.request_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fake.request_count(), 1, "the turn reached the model");
    server.kill9().await;
    let (ok, _, _) = chat.await.unwrap();
    assert!(!ok, "the client saw the connection die");

    let server = serve(dir.path(), &ports, &fake).await;
    let mut history = String::new();
    for _ in 0..300 {
        let (_, list, _) = cli(dir.path(), &server.grpc, &["session", "list"]).await;
        let id = session_id_of(&list);
        let (_, out, _) = cli(
            dir.path(),
            &server.grpc,
            &["session", "show", &id, "--json"],
        )
        .await;
        if out.contains("You said: survive this") {
            history = out;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !history.is_empty(),
        "the message was answered after the restart"
    );
    let value: serde_json::Value = serde_json::from_str(history.trim()).unwrap();
    let messages = value["messages"].as_array().unwrap();
    let users = messages.iter().filter(|m| m["role"] == "user").count();
    let answers = messages.iter().filter(|m| m["role"] == "assistant").count();
    assert_eq!(
        (users, answers),
        (1, 1),
        "one question, one answer: {history}"
    );
    // Nothing answers it a second time later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.request_count(), 2);
    server.stop().await;
}

#[tokio::test]
async fn cli_errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeOpenAi::start().await;
    let ports = Ports {
        grpc: free_port(),
        http: free_port(),
    };
    let server = serve(dir.path(), &ports, &fake).await;
    let (ok, _, err) = cli(
        dir.path(),
        &server.grpc,
        &[
            "chat",
            "-m",
            "hi",
            "--api-key",
            "nxs_wrongwrongwrongwrongwrongwrongwrongwrong",
        ],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("invalid API key"), "{err}");
    let (ok, _, err) = cli(
        dir.path(),
        &server.grpc,
        &["chat", "--agent", "ghost", "-m", "hi"],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("agent `ghost` not found"), "{err}");
    server.stop().await;

    let (ok, _, err) = cli(dir.path(), "http://127.0.0.1:9", &["agent", "list"]).await;
    assert!(!ok);
    assert!(err.contains("cannot reach the server"), "{err}");

    let out = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env("NEXUS_HTTP_ADDR", "localhost")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NEXUS_HTTP_ADDR") && err.contains("HOST:PORT"),
        "{err}"
    );
}

#[tokio::test]
async fn usage_shows_the_tokens_and_cost_of_chats() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeOpenAi::start().await;
    let ports = Ports {
        grpc: free_port(),
        http: free_port(),
    };
    let server = serve(dir.path(), &ports, &fake).await;
    // 1000 prompt tokens of which 400 cached, 200 completion tokens.
    fake.push(Reply::text("priced answer").usage(1000, 200, 400));
    let (ok, _, err) = cli(dir.path(), &server.grpc, &["chat", "-m", "hello"]).await;
    assert!(ok, "{err}");

    let (ok, out, err) = cli(dir.path(), &server.grpc, &["usage", "--json"]).await;
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = &report["rows"][0];
    assert_eq!(row["key"], "openai/gpt-4o-mini");
    assert_eq!(row["calls"], 1);
    assert_eq!(row["input_tokens"], 1000);
    assert_eq!(row["output_tokens"], 200);
    assert_eq!(row["cache_read_tokens"], 400);
    // The built-in catalog's gpt-4o-mini prices: 600 × $0.15 + 400 × $0.075 + 200 × $0.60
    // per million = 90 + 30 + 120 micro-dollars.
    assert_eq!(row["cost_micros"], 240);
    assert_eq!(report["total"]["turns"], 1);

    let (ok, out, err) = cli(
        dir.path(),
        &server.grpc,
        &["usage", "--by", "day", "--since", "1h"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("TOTAL") && out.contains("0.0002"), "{out}");
    let (ok, out, _) = cli(
        dir.path(),
        &server.grpc,
        &[
            "usage",
            "--since",
            "2000-01-01T00:00:00Z",
            "--agent",
            "nobody",
        ],
    )
    .await;
    assert!(!ok, "{out}");
    let (ok, _, err) = cli(dir.path(), &server.grpc, &["usage", "--since", "soon"]).await;
    assert!(!ok);
    assert!(err.contains("--since"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn a_chain_of_anthropic_then_openai_answers_when_anthropic_fails() {
    let dir = tempfile::tempdir().unwrap();
    let openai = FakeOpenAi::start().await;
    let anthropic = FakeAnthropic::start().await;
    let ports = Ports {
        grpc: free_port(),
        http: free_port(),
    };
    // Anthropic is configured, but with a key it refuses: the first model of the chain fails.
    let server = serve_with(
        dir.path(),
        &ports,
        &openai,
        &[
            ("ANTHROPIC_API_KEY", "sk-ant-wrong-key".to_owned()),
            ("ANTHROPIC_BASE_URL", anthropic.base_url()),
        ],
    )
    .await;
    let (ok, _, err) = cli(
        dir.path(),
        &server.grpc,
        &[
            "agent",
            "create",
            "steady",
            "--model",
            "anthropic/claude-sonnet-4-5",
            "--fallback",
            "openai/gpt-4o-mini",
        ],
    )
    .await;
    assert!(ok, "{err}");
    openai.push(Reply::text("answered by the fallback").usage(50, 5, 0));
    let (ok, out, err) = cli(
        dir.path(),
        &server.grpc,
        &["chat", "--agent", "steady", "-m", "hello"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "answered by the fallback");
    assert!(
        err.contains("anthropic/claude-sonnet-4-5 failed")
            && err.contains("answering with openai/gpt-4o-mini"),
        "the switch is shown: {err}"
    );
    assert!(anthropic.request_count() >= 1);

    // Usage is billed to the model that answered.
    let (ok, out, err) = cli(dir.path(), &server.grpc, &["usage", "--json"]).await;
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["rows"][0]["key"], "openai/gpt-4o-mini", "{report}");
    server.stop().await;
}

#[tokio::test]
async fn models_lists_the_catalog_with_the_configuration_applied() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("nexus.toml"),
        "[providers.ollama]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:11434/v1\"\n\
         [[providers.ollama.models]]\nname = \"llama3.2\"\ncontext_window = 131072\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["models", "--json", "--config", "nexus.toml"])
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let models: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let find = |id: &str| {
        models
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
    };
    let mini = find("openai/gpt-4o-mini").expect("built-in entry");
    assert_eq!(mini["context_window"], 128000);
    assert!(
        mini["prices_usd_per_million_tokens"]["input"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let local = find("ollama/llama3.2").expect("configured server's model");
    assert_eq!(local["context_window"], 131072);

    let out = Command::new(BIN)
        .args(["models", "--provider", "ollama", "--config", "nexus.toml"])
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("ollama/llama3.2") && !table.contains("openai/"),
        "{table}"
    );
}

/// Waits until the fake Telegram bot has sent a message satisfying `cond` (10 s at most).
async fn telegram_bot_said(
    telegram: &nexus_testkit::FakeTelegram,
    what: &str,
    cond: impl Fn(&str) -> bool,
) -> String {
    use nexus_testkit::chat::ChatPlatform;
    for _ in 0..500 {
        if let Some(m) = telegram.bot_messages().into_iter().find(|m| cond(&m.text)) {
            return m.text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the bot never said {what}: {:#?}", telegram.bot_messages());
}

#[tokio::test]
async fn channel_commands_add_show_and_approve_a_telegram_bot() {
    use nexus_testkit::chat::{ChatPlatform, UserSays};

    let dir = tempfile::tempdir().unwrap();
    let fake = FakeOpenAi::start().await;
    let telegram = nexus_testkit::FakeTelegram::start().await;
    let ports = Ports {
        grpc: free_port(),
        http: free_port(),
    };
    let server = serve(dir.path(), &ports, &fake).await;
    let base = telegram.base_url();
    let (ok, out, err) = cli(
        dir.path(),
        &server.grpc,
        &[
            "channel",
            "add",
            "telegram",
            "--agent",
            "assistant",
            "--token",
            telegram.token(),
            "--api-base",
            &base,
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains(telegram.bot_username()),
        "the bot's name is shown: {out}"
    );
    assert!(out.contains("nexus channel approve"), "{out}");

    // The channel shows as running once its connection started.
    let mut list = String::new();
    for _ in 0..200 {
        let (ok, out, err) = cli(dir.path(), &server.grpc, &["channel", "list"]).await;
        assert!(ok, "{err}");
        list = out;
        if list.contains("running") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let row = list
        .lines()
        .find(|l| l.starts_with("telegram"))
        .unwrap_or_else(|| panic!("a telegram row: {list}"));
    assert!(
        row.contains("polling") && row.contains("active") && row.contains("running"),
        "{list}"
    );
    let (ok, show, err) = cli(dir.path(), &server.grpc, &["channel", "show", "telegram"]).await;
    assert!(ok, "{err}");
    assert!(show.contains("name:        telegram"), "{show}");
    assert!(show.contains("state:       running"), "{show}");
    assert!(show.contains(&format!("api base:    {base}")), "{show}");

    // An unknown sender gets a code; the owner approves it from the CLI.
    telegram.say(UserSays::direct("4001", "hello?")).await;
    let notice = telegram_bot_said(&telegram, "a pairing code", |t| {
        t.contains("nexus channel approve ")
    })
    .await;
    let code: String = notice
        .split("nexus channel approve ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let (ok, show, _) = cli(dir.path(), &server.grpc, &["channel", "show", "telegram"]).await;
    assert!(
        ok && show.contains(&code),
        "the pending code is shown: {show}"
    );
    let (ok, out, err) = cli(dir.path(), &server.grpc, &["channel", "approve", &code]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("Approved") && out.contains("4001") && out.contains("telegram"),
        "{out}"
    );
    fake.push(Reply::text("Paired and answered."));
    telegram.say(UserSays::direct("4001", "hello again")).await;
    telegram_bot_said(&telegram, "the answer", |t| t == "Paired and answered.").await;
    assert_eq!(
        telegram.bot_messages().len(),
        2,
        "{:#?}",
        telegram.bot_messages()
    );
    server.stop().await;
}
