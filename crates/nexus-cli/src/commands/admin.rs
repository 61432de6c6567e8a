//! Agents, sessions, users and API keys over the gRPC API.

use std::process::ExitCode;

use nexus_gateway::pb;

use crate::args::{
    AgentCommand, KeyCommand, ProviderKeyCommand, SessionCommand, ToolCommand, UserCommand,
};
use crate::client::{connect, status};
use crate::output;

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

fn print_agent(a: &pb::Agent) {
    output::line(&format!("name:           {}", a.name));
    output::line(&format!("id:             {}", a.id));
    output::line(&format!("model:          {}", a.model));
    if !a.fallback_models.is_empty() {
        output::line(&format!("fallbacks:      {}", a.fallback_models.join(", ")));
    }
    output::line(&format!("tools:          {}", or_dash(&a.tools.join(", "))));
    let network = a.tool_policy.as_ref().is_some_and(|p| p.network);
    output::line(&format!(
        "code network:   {}",
        if network { "allowed" } else { "blocked" }
    ));
    output::line(&format!("max steps:      {}", a.max_steps));
    if let Some(t) = a.max_output_tokens {
        output::line(&format!("max out tokens: {t}"));
    }
    if let Some(t) = a.temperature {
        output::line(&format!("temperature:    {t}"));
    }
    output::line(&format!("description:    {}", or_dash(&a.description)));
    output::line(&format!("created:        {}", a.created_at));
    output::line("system prompt:");
    output::line(&a.system_prompt);
}

pub(crate) async fn agent(command: AgentCommand) -> anyhow::Result<ExitCode> {
    match command {
        AgentCommand::Create(a) => {
            let mut client = connect(&a.client).await?;
            let agent = client
                .create_agent(pb::CreateAgentRequest {
                    name: a.name,
                    description: a.description.unwrap_or_default(),
                    system_prompt: a.system_prompt.unwrap_or_default(),
                    model: a.model.unwrap_or_default(),
                    fallback_models: a.fallback,
                    tools: a.tools,
                    tool_policy: Some(pb::ToolPolicy {
                        network: a.allow_network,
                    }),
                    max_steps: a.max_steps.unwrap_or(0),
                    max_output_tokens: a.max_output_tokens,
                    temperature: a.temperature,
                })
                .await
                .map_err(status)?
                .into_inner();
            output::line(&format!(
                "Created agent `{}` ({}) on {}",
                agent.name, agent.id, agent.model
            ));
        }
        AgentCommand::List { all, json, client } => {
            let mut client = connect(&client).await?;
            let agents = client
                .list_agents(pb::ListAgentsRequest { all_users: all })
                .await
                .map_err(status)?
                .into_inner()
                .agents;
            if json {
                output::json(&to_json(&agents));
            } else {
                let rows: Vec<Vec<String>> = agents
                    .iter()
                    .map(|a| {
                        vec![
                            a.name.clone(),
                            a.model.clone(),
                            or_dash(&a.tools.join(",")),
                            a.id.clone(),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "MODEL", "TOOLS", "ID"], &rows);
            }
        }
        AgentCommand::Show {
            agent,
            json,
            client,
        } => {
            let mut client = connect(&client).await?;
            let agent = client
                .get_agent(pb::GetAgentRequest { agent })
                .await
                .map_err(status)?
                .into_inner();
            if json {
                output::json(&to_json(&agent));
            } else {
                print_agent(&agent);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn session(command: SessionCommand) -> anyhow::Result<ExitCode> {
    match command {
        SessionCommand::List {
            agent,
            limit,
            all,
            json,
            client,
        } => {
            let mut client = connect(&client).await?;
            let sessions = client
                .list_sessions(pb::ListSessionsRequest {
                    agent: agent.unwrap_or_default(),
                    limit,
                    all_users: all,
                })
                .await
                .map_err(status)?
                .into_inner()
                .sessions;
            if json {
                output::json(&to_json(&sessions));
            } else {
                let rows: Vec<Vec<String>> = sessions
                    .iter()
                    .map(|s| {
                        vec![
                            s.id.clone(),
                            s.channel.clone(),
                            s.updated_at.clone(),
                            s.title.clone(),
                        ]
                    })
                    .collect();
                output::table(&["ID", "CHANNEL", "UPDATED", "TITLE"], &rows);
            }
        }
        SessionCommand::Show { id, json, client } => {
            let mut client = connect(&client).await?;
            let response = client
                .get_session(pb::GetSessionRequest {
                    session_id: id,
                    after_seq: 0,
                    limit: 0,
                })
                .await
                .map_err(status)?
                .into_inner();
            if json {
                output::json(&to_json(&response));
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(s) = &response.session {
                output::line(&format!(
                    "session {} ({}, started {})",
                    s.id, s.channel, s.created_at
                ));
            }
            for m in &response.messages {
                let who = match m.role.as_str() {
                    "tool" => format!("tool[{}]", m.tool_call_id),
                    other => other.to_owned(),
                };
                output::line(&format!("\n#{} {} · {}", m.seq, who, m.created_at));
                for call in &m.tool_calls {
                    output::line(&format!("  → {}({})", call.name, call.arguments_json));
                }
                if !m.content.is_empty() {
                    output::line(&m.content);
                }
                for a in &m.attachments {
                    output::line(&format!("  file {}", output::attachment(a)));
                }
            }
        }
        SessionCommand::Cancel { id, client } => {
            let mut client = connect(&client).await?;
            let response = client
                .cancel_turn(pb::CancelTurnRequest { session_id: id })
                .await
                .map_err(status)?
                .into_inner();
            if response.turn_id.is_empty() {
                output::line("No turn is running in that session on the server you asked.");
            } else {
                output::line(&format!("Cancelled turn {}", response.turn_id));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn tool(command: ToolCommand) -> anyhow::Result<ExitCode> {
    let ToolCommand::List { json, client } = command;
    let mut client = connect(&client).await?;
    let response = client
        .list_tools(pb::ListToolsRequest {})
        .await
        .map_err(status)?
        .into_inner();
    if json {
        output::json(&to_json(&response));
        return Ok(ExitCode::SUCCESS);
    }
    if response.tools.is_empty() {
        output::line(
            "The server offers no tools; enable them under [tools] in its configuration \
             (see docs/tools.md).",
        );
    }
    for t in &response.tools {
        let summary = t.description.lines().next().unwrap_or_default();
        output::line(&format!("{:<24} {summary}", t.name));
        if !t.status.is_empty() {
            output::line(&format!("{:<24} status: {}", "", t.status));
        }
        if !t.tools.is_empty() {
            output::line(&format!("{:<24} tools: {}", "", t.tools.join(", ")));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Create { name, role, client } => {
            let mut client = connect(&client).await?;
            let user = client
                .create_user(pb::CreateUserRequest { name, role })
                .await
                .map_err(status)?
                .into_inner();
            output::line(&format!(
                "Created user `{}` ({}, {}). Give them a key with `nexus key create --user {}`.",
                user.name, user.role, user.id, user.name
            ));
        }
        UserCommand::List { json, client } => {
            let mut client = connect(&client).await?;
            let users = client
                .list_users(pb::ListUsersRequest {})
                .await
                .map_err(status)?
                .into_inner()
                .users;
            if json {
                output::json(&to_json(&users));
            } else {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|u| {
                        vec![
                            u.name.clone(),
                            u.role.clone(),
                            u.created_at.clone(),
                            u.id.clone(),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "ROLE", "CREATED", "ID"], &rows);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn key(command: KeyCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeyCommand::Create { user, name, client } => {
            let mut client = connect(&client).await?;
            let created = client
                .create_api_key(pb::CreateApiKeyRequest {
                    user: user.unwrap_or_default(),
                    name,
                })
                .await
                .map_err(status)?
                .into_inner();
            let id = created.key.map(|k| k.id).unwrap_or_default();
            eprintln!("Created API key {id}. It is shown once; store it now:");
            output::line(&created.secret);
        }
        KeyCommand::List { user, json, client } => {
            let mut client = connect(&client).await?;
            let keys = client
                .list_api_keys(pb::ListApiKeysRequest {
                    user: user.unwrap_or_default(),
                })
                .await
                .map_err(status)?
                .into_inner()
                .keys;
            if json {
                output::json(&to_json(&keys));
            } else {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.id.clone(),
                            k.prefix.clone(),
                            k.name.clone(),
                            k.user_id.clone(),
                            or_dash(&k.last_used_at),
                            if k.revoked_at.is_empty() {
                                "active".to_owned()
                            } else {
                                format!("revoked {}", k.revoked_at)
                            },
                        ]
                    })
                    .collect();
                output::table(
                    &["ID", "PREFIX", "NAME", "USER", "LAST USED", "STATE"],
                    &rows,
                );
            }
        }
        KeyCommand::Revoke { id, client } => {
            let mut client = connect(&client).await?;
            let revoked = client
                .revoke_api_key(pb::RevokeApiKeyRequest { key_id: id.clone() })
                .await
                .map_err(status)?
                .into_inner()
                .revoked;
            if revoked {
                output::line(&format!("Revoked key {id}."));
            } else {
                output::line(&format!("Key {id} was already revoked."));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn provider_key(command: ProviderKeyCommand) -> anyhow::Result<ExitCode> {
    match command {
        ProviderKeyCommand::Set {
            provider,
            key,
            client,
        } => {
            let key = match key {
                Some(k) => k,
                None => {
                    eprintln!("Paste the {provider} key and press Enter:");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line
                }
            };
            let mut client = connect(&client).await?;
            let stored = client
                .set_provider_key(pb::SetProviderKeyRequest {
                    provider,
                    api_key: key.trim().to_owned(),
                })
                .await
                .map_err(status)?
                .into_inner();
            output::line(&format!(
                "Stored your {} key (sealed at rest).",
                stored.provider
            ));
        }
        ProviderKeyCommand::List { client } => {
            let mut client = connect(&client).await?;
            let keys = client
                .list_provider_keys(pb::ListProviderKeysRequest {})
                .await
                .map_err(status)?
                .into_inner()
                .keys;
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| vec![k.provider.clone(), k.created_at.clone()])
                .collect();
            output::table(&["PROVIDER", "STORED"], &rows);
        }
        ProviderKeyCommand::Delete { provider, client } => {
            let mut client = connect(&client).await?;
            let deleted = client
                .delete_provider_key(pb::DeleteProviderKeyRequest {
                    provider: provider.clone(),
                })
                .await
                .map_err(status)?
                .into_inner()
                .deleted;
            output::line(&if deleted {
                format!("Deleted your {provider} key.")
            } else {
                format!("You had no {provider} key.")
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
