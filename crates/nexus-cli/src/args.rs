//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Nexus: a multi-channel AI agent platform.
#[derive(Debug, Parser)]
#[command(name = "nexus", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server (gRPC and HTTP).
    Serve(ServeArgs),
    /// Chat with an agent; streams the reply.
    Chat(ChatArgs),
    /// Manage agents.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Read sessions and their history.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Manage users (admin only).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys (admin only).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Store your own model provider keys (sealed at rest; never shown again).
    #[command(subcommand)]
    ProviderKey(ProviderKeyCommand),
    /// Tokens and cost, per model, agent, user or day.
    Usage(UsageArgs),
    /// The model catalog: context windows, tool support and prices (built in, plus the
    /// configuration's [[models]] and [providers.*]).
    Models(ModelsArgs),
    /// Apply database migrations and exit.
    Migrate(ServerConfigArgs),
    /// Check configuration, database, master key and providers; say what to fix.
    Doctor(DoctorArgs),
}

/// Where the server's configuration comes from.
#[derive(Debug, Args, Clone)]
pub(crate) struct ServerConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "NEXUS_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Data directory (SQLite database, blobs, master key, admin key). Default ./nexus-data.
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) config: ServerConfigArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    pub(crate) config: ServerConfigArgs,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// How a client command reaches the server.
#[derive(Debug, Args, Clone)]
pub(crate) struct ClientArgs {
    /// gRPC address of the server.
    #[arg(
        long,
        env = "NEXUS_SERVER",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub(crate) server: String,
    /// API key. Default: NEXUS_API_KEY, else the admin key of a local server's data directory.
    #[arg(long, global = true, hide_env_values = true)]
    pub(crate) api_key: Option<String>,
    /// Data directory of a local server, to find its admin.key. Default: NEXUS_DATA_DIR or
    /// ./nexus-data.
    #[arg(long, global = true)]
    pub(crate) data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// The message; without it, an interactive prompt starts.
    #[arg(short = 'm', long = "message")]
    pub(crate) message: Option<String>,
    /// Agent name or id.
    #[arg(long, default_value = "assistant")]
    pub(crate) agent: String,
    /// Continue this session.
    #[arg(long)]
    pub(crate) session: Option<String>,
    /// Print one JSON event per line instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Create an agent.
    Create(AgentCreateArgs),
    /// List your agents.
    List {
        /// Every user's agents (admin).
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show an agent.
    Show {
        /// Name or id.
        agent: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AgentCreateArgs {
    /// Name: a-z, 0-9, _ and -.
    pub(crate) name: String,
    /// Model as provider/model; default: the server's default model.
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// Fallback models, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub(crate) fallback: Vec<String>,
    /// System prompt.
    #[arg(long)]
    pub(crate) system_prompt: Option<String>,
    /// Description.
    #[arg(long)]
    pub(crate) description: Option<String>,
    /// Tools the agent may call, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub(crate) tools: Vec<String>,
    /// Model calls per turn at most (default 8).
    #[arg(long)]
    pub(crate) max_steps: Option<u32>,
    /// Output tokens per model call at most.
    #[arg(long)]
    pub(crate) max_output_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2.
    #[arg(long)]
    pub(crate) temperature: Option<f32>,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SessionCommand {
    /// List your sessions, most recent first.
    List {
        /// Only this agent's sessions.
        #[arg(long)]
        agent: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Every user's sessions (admin).
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a session's history.
    Show {
        /// Session id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ModelsArgs {
    /// Only this provider's models (e.g. anthropic).
    #[arg(long)]
    pub(crate) provider: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) config: ServerConfigArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UsageArgs {
    /// Only this agent (name or id).
    #[arg(long)]
    pub(crate) agent: Option<String>,
    /// Only usage since then: a duration back from now (`30m`, `24h`, `7d`), a date
    /// (`2026-11-01`, UTC) or an RFC 3339 time.
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Group by model, agent, user or day.
    #[arg(long, default_value = "model", value_parser = ["model", "agent", "user", "day"])]
    pub(crate) by: String,
    /// Only this user (name or id; admins only).
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user.
    Create {
        /// Name: a-z, 0-9, _, - and .
        name: String,
        /// admin, user or viewer.
        #[arg(long, default_value = "user")]
        role: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Create an API key; the key is printed once.
    Create {
        /// The user (name or id); default: yourself.
        #[arg(long)]
        user: Option<String>,
        /// A label.
        #[arg(long, default_value = "default")]
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List API keys.
    List {
        /// Only this user's keys.
        #[arg(long)]
        user: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke an API key.
    Revoke {
        /// Key id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProviderKeyCommand {
    /// Store or replace your key for a provider.
    Set {
        /// Provider name, e.g. openai.
        provider: String,
        /// The key; read from standard input when omitted (keeps it out of shell history).
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the providers you stored keys for.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete your key for a provider.
    Delete {
        /// Provider name.
        provider: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}
