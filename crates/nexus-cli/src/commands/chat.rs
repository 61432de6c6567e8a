//! `nexus chat`: one message with `-m`, or an interactive prompt; the reply streams as it comes.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use nexus_gateway::pb;
use nexus_gateway::pb::chat_event::Event;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::args::ChatArgs;
use crate::client::{Client, connect, status};

/// How a streamed turn ended.
struct Outcome {
    session_id: Option<String>,
    ok: bool,
}

pub(crate) async fn run(args: ChatArgs) -> anyhow::Result<ExitCode> {
    let mut client = connect(&args.client).await?;
    if let Some(message) = &args.message {
        let outcome = turn(&mut client, &args, args.session.clone(), message).await?;
        return Ok(if outcome.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    interactive(&mut client, &args).await
}

async fn interactive(client: &mut Client, args: &ChatArgs) -> anyhow::Result<ExitCode> {
    let mut session = args.session.clone();
    eprintln!(
        "Chatting with `{}`. Type /new for a fresh session, /exit or Ctrl-D to leave.",
        args.agent
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        eprint!("you> ");
        let _ = std::io::stderr().flush();
        let Some(line) = lines
            .next_line()
            .await
            .context("cannot read the terminal")?
        else {
            eprintln!();
            return Ok(ExitCode::SUCCESS);
        };
        let text = line.trim();
        match text {
            "" => continue,
            "/exit" | "/quit" => return Ok(ExitCode::SUCCESS),
            "/new" => {
                session = None;
                eprintln!("(new session)");
                continue;
            }
            _ => {}
        }
        match turn(client, args, session.clone(), text).await {
            Ok(outcome) => {
                if outcome.session_id.is_some() {
                    session = outcome.session_id;
                }
            }
            Err(err) => eprintln!("error: {err:#}"),
        }
    }
}

async fn turn(
    client: &mut Client,
    args: &ChatArgs,
    session: Option<String>,
    text: &str,
) -> anyhow::Result<Outcome> {
    let request = pb::ChatRequest {
        agent: args.agent.clone(),
        session_id: session.unwrap_or_default(),
        text: text.to_owned(),
        client_message_id: String::new(),
    };
    let mut stream = client.chat(request).await.map_err(status)?.into_inner();
    let mut out = std::io::stdout().lock();
    let mut outcome = Outcome {
        session_id: None,
        ok: false,
    };
    let mut wrote_text = false;
    while let Some(event) = stream.message().await.map_err(status)? {
        let Some(event) = event.event else { continue };
        if args.json {
            let _ = writeln!(out, "{}", event_json(&event));
        }
        match event {
            Event::Started(s) => outcome.session_id = Some(s.session_id),
            Event::TextDelta(d) if !args.json => {
                let _ = write!(out, "{}", d.text);
                let _ = out.flush();
                wrote_text = true;
            }
            Event::ToolCallStarted(t) if !args.json => {
                eprintln!("[tool {} {}]", t.name, t.arguments_json);
            }
            Event::ToolCallFinished(t) if !args.json => {
                let outcome = if t.is_error { "failed" } else { "done" };
                eprintln!("[tool {} {outcome} in {} ms]", t.name, t.duration_ms);
                for a in &t.attachments {
                    eprintln!("[file {}]", crate::output::attachment(a));
                }
            }
            Event::Failover(f) if !args.json => {
                eprintln!(
                    "[{} failed ({}); answering with {}]",
                    f.from, f.reason, f.to
                );
            }
            Event::Done(d) => {
                outcome.session_id = Some(d.session_id);
                outcome.ok = true;
            }
            Event::Error(e) if !args.json => {
                if wrote_text {
                    let _ = writeln!(out);
                }
                eprintln!("error ({}): {}", e.kind, e.message);
                return Ok(outcome);
            }
            _ => {}
        }
    }
    if wrote_text {
        let _ = writeln!(out);
    }
    Ok(outcome)
}

fn event_json(event: &Event) -> serde_json::Value {
    match event {
        Event::Started(s) => {
            json!({"type": "started", "turn_id": s.turn_id, "session_id": s.session_id, "message_id": s.message_id})
        }
        Event::TextDelta(d) => json!({"type": "text_delta", "text": d.text}),
        Event::ToolCallStarted(t) => {
            json!({"type": "tool_call_started", "call_id": t.call_id, "name": t.name, "arguments": serde_json::from_str::<serde_json::Value>(&t.arguments_json).unwrap_or(serde_json::Value::Null)})
        }
        Event::ToolCallFinished(t) => {
            let files: Vec<serde_json::Value> = t.attachments.iter().map(|a| json!({"id": a.id, "content_type": a.content_type, "filename": a.filename, "size": a.size, "url": a.url})).collect();
            json!({"type": "tool_call_finished", "call_id": t.call_id, "name": t.name, "output": t.output, "is_error": t.is_error, "duration_ms": t.duration_ms, "attachments": files})
        }
        Event::Usage(u) => {
            json!({"type": "usage", "model": u.model, "input_tokens": u.input_tokens, "output_tokens": u.output_tokens, "cache_read_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens})
        }
        Event::Done(d) => {
            json!({"type": "done", "turn_id": d.turn_id, "session_id": d.session_id, "message_id": d.message_id})
        }
        Event::Error(e) => json!({"type": "error", "kind": e.kind, "message": e.message}),
        Event::Failover(f) => {
            json!({"type": "failover", "from": f.from, "to": f.to, "reason": f.reason})
        }
    }
}
