//! `nexus channel …`: connect agents to Telegram, Discord and Slack.

use std::process::ExitCode;

use nexus_gateway::pb;

use crate::args::{AccessArgs, ChannelAddCommand, ChannelAddCommon, ChannelCommand};
use crate::client::{connect, status};
use crate::output;

fn access(a: &AccessArgs) -> pb::ChannelAccess {
    pb::ChannelAccess {
        dm: a.dm.clone(),
        allow: a.allow.clone(),
        groups: a.groups.clone(),
        tools: a.tools.as_ref().map(|t| pb::ToolLimit {
            tools: t.iter().filter(|s| *s != "none").cloned().collect(),
        }),
    }
}

/// The token given, or one line read from standard input (keeps it out of shell history).
fn token_or_stdin(token: Option<String>, what: &str) -> anyhow::Result<String> {
    if let Some(t) = token {
        return Ok(t);
    }
    eprintln!("Paste the {what} and press Enter:");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

pub(crate) async fn run(command: ChannelCommand) -> anyhow::Result<ExitCode> {
    match command {
        ChannelCommand::Add(add) => add_channel(add).await,
        ChannelCommand::List { json, client } => {
            let mut client = connect(&client).await?;
            let list = client
                .list_channels(pb::ListChannelsRequest {})
                .await
                .map_err(status)?
                .into_inner();
            if json {
                output::json(&serde_json::to_value(&list)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = list
                .channels
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        c.kind.clone(),
                        c.mode.clone(),
                        c.status.clone(),
                        dash(&c.state),
                        dash(&c.last_error),
                        c.id.clone(),
                    ]
                })
                .collect();
            output::table(
                &[
                    "NAME",
                    "KIND",
                    "MODE",
                    "STATUS",
                    "STATE",
                    "LAST ERROR",
                    "ID",
                ],
                &rows,
            );
            Ok(ExitCode::SUCCESS)
        }
        ChannelCommand::Show {
            channel,
            json,
            client,
        } => {
            let mut client = connect(&client).await?;
            let c = client
                .get_channel(pb::GetChannelRequest { channel })
                .await
                .map_err(status)?
                .into_inner();
            if json {
                output::json(&serde_json::to_value(&c)?);
            } else {
                show(&c);
            }
            Ok(ExitCode::SUCCESS)
        }
        ChannelCommand::Remove { channel, client } => {
            let mut client = connect(&client).await?;
            let done = client
                .remove_channel(pb::RemoveChannelRequest {
                    channel: channel.clone(),
                })
                .await
                .map_err(status)?
                .into_inner();
            output::line(&if done.removed {
                format!("Removed channel {channel}.")
            } else {
                format!("Channel {channel} was already gone.")
            });
            Ok(ExitCode::SUCCESS)
        }
        ChannelCommand::Pause { channel, client } => set_status(channel, true, client).await,
        ChannelCommand::Resume { channel, client } => set_status(channel, false, client).await,
        ChannelCommand::Access {
            channel,
            access: a,
            client,
        } => {
            let mut client = connect(&client).await?;
            let c = client
                .set_channel_access(pb::SetChannelAccessRequest {
                    channel,
                    access: Some(access(&a)),
                })
                .await
                .map_err(status)?
                .into_inner();
            show(&c);
            Ok(ExitCode::SUCCESS)
        }
        ChannelCommand::Approve { code, client } => {
            let mut client = connect(&client).await?;
            let done = client
                .approve_pairing(pb::ApprovePairingRequest { code })
                .await
                .map_err(status)?
                .into_inner();
            let who = if done.sender_name.is_empty() {
                done.sender_id.clone()
            } else {
                format!("{} ({})", done.sender_name, done.sender_id)
            };
            output::line(&format!(
                "Approved {who} on channel {}. They can write to the bot now.",
                done.channel_name
            ));
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn add_channel(add: ChannelAddCommand) -> anyhow::Result<ExitCode> {
    let (request, common): (pb::AddChannelRequest, ChannelAddCommon) = match add {
        ChannelAddCommand::Telegram {
            token,
            mode,
            webhook_url,
            common,
        } => (
            pb::AddChannelRequest {
                kind: "telegram".into(),
                token: token_or_stdin(token, "Telegram bot token")?,
                mode,
                webhook_url: webhook_url.unwrap_or_default(),
                ..Default::default()
            },
            common,
        ),
        ChannelAddCommand::Discord {
            token,
            gateway_url,
            common,
        } => (
            pb::AddChannelRequest {
                kind: "discord".into(),
                token: token_or_stdin(token, "Discord bot token")?,
                gateway_url: gateway_url.unwrap_or_default(),
                ..Default::default()
            },
            common,
        ),
        ChannelAddCommand::Slack {
            bot_token,
            app_token,
            signing_secret,
            common,
        } => (
            pb::AddChannelRequest {
                kind: "slack".into(),
                bot_token,
                mode: if signing_secret.is_some() {
                    "events".into()
                } else {
                    "socket".into()
                },
                app_token: app_token.unwrap_or_default(),
                signing_secret: signing_secret.unwrap_or_default(),
                ..Default::default()
            },
            common,
        ),
    };
    let request = pb::AddChannelRequest {
        name: common.name.clone().unwrap_or_default(),
        agent: common.agent.clone(),
        api_base: common.api_base.clone().unwrap_or_default(),
        access: Some(access(&common.access)),
        ..request
    };
    let mut client = connect(&common.client).await?;
    let added = client
        .add_channel(request)
        .await
        .map_err(status)?
        .into_inner();
    if common.json {
        output::json(&serde_json::to_value(&added)?);
        return Ok(ExitCode::SUCCESS);
    }
    let Some(c) = &added.channel else {
        anyhow::bail!("the server did not return the channel");
    };
    output::line(&format!(
        "Added {} channel {} as bot {} ({}); it answers with agent {}.",
        c.kind, c.name, added.bot_name, added.bot_id, common.agent
    ));
    if !c.webhook_url.is_empty() {
        output::line(&format!("Platform posts go to {}", c.webhook_url));
    }
    if c.access.as_ref().is_some_and(|a| a.dm == "pairing") {
        output::line(
            "Unknown senders get a pairing code in direct messages; approve it with \
             `nexus channel approve CODE`.",
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_status(
    channel: String,
    paused: bool,
    client: crate::args::ClientArgs,
) -> anyhow::Result<ExitCode> {
    let mut client = connect(&client).await?;
    let c = client
        .set_channel_status(pb::SetChannelStatusRequest { channel, paused })
        .await
        .map_err(status)?
        .into_inner();
    output::line(&format!(
        "Channel {} is {}.",
        c.name,
        if paused { "paused" } else { "active" }
    ));
    Ok(ExitCode::SUCCESS)
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_owned()
    }
}

fn show(c: &pb::Channel) {
    let access = c.access.clone().unwrap_or_default();
    let mut lines = vec![
        format!("name:        {}", c.name),
        format!("id:          {}", c.id),
        format!("kind:        {} ({})", c.kind, c.mode),
        format!("agent:       {}", c.agent_id),
        format!("status:      {}", c.status),
        format!(
            "state:       {}{}",
            dash(&c.state),
            if c.state_updated_at.is_empty() {
                String::new()
            } else {
                format!(" (since {}, on {})", c.state_updated_at, dash(&c.holder))
            }
        ),
        format!("last error:  {}", dash(&c.last_error)),
        format!(
            "access:      direct messages {}, groups {}{}",
            access.dm,
            access.groups,
            if access.allow.is_empty() {
                String::new()
            } else {
                format!(", allowed: {}", access.allow.join(", "))
            }
        ),
    ];
    for (label, value) in [
        ("api base:    ", &c.api_base),
        ("gateway url: ", &c.gateway_url),
        ("webhook url: ", &c.webhook_url),
    ] {
        if !value.is_empty() {
            lines.push(format!("{label}{value}"));
        }
    }
    for line in lines {
        output::line(&line);
    }
    if !c.pairings.is_empty() {
        output::line("pairings:");
        let rows: Vec<Vec<String>> = c
            .pairings
            .iter()
            .map(|p| {
                vec![
                    p.sender_id.clone(),
                    dash(&p.sender_name),
                    if p.approved {
                        "approved".into()
                    } else {
                        format!("code {} (expires {})", p.code, p.expires_at)
                    },
                ]
            })
            .collect();
        output::table(&["SENDER", "NAME", "STATE"], &rows);
    }
}
