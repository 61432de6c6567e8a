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
    /// Read sessions and their history; cancel a running turn.
    #[command(subcommand)]
    Session(SessionCommand),
    /// The tools the server offers agents.
    #[command(subcommand)]
    Tool(ToolCommand),
    /// Manage users (admin only).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys (admin only).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Store your own model provider keys (sealed at rest; never shown again).
    #[command(subcommand)]
    ProviderKey(ProviderKeyCommand),
    /// Connect agents to Telegram, Discord and Slack.
    #[command(subcommand)]
    Channel(ChannelCommand),
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
    /// Tools the agent may call, comma separated (e.g. `code,web_fetch`; `mcp:NAME` for every
    /// tool of a configured MCP server). `nexus tool list` shows what the server offers.
    #[arg(long, value_delimiter = ',')]
    pub(crate) tools: Vec<String>,
    /// Let code the agent runs in the sandbox reach the network (off by default).
    #[arg(long)]
    pub(crate) allow_network: bool,
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
    /// Stop the turn running in a session (its model call and tools stop).
    Cancel {
        /// Session id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ToolCommand {
    /// The tools agents can be given (`nexus agent create --tools …`).
    List {
        /// Print JSON, with each tool's parameter schema.
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

/// Who may talk to a channel's bot.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct AccessArgs {
    /// Direct messages: open, allowlist or pairing (unknown senders get a code you approve
    /// with `nexus channel approve CODE`).
    #[arg(long, default_value = "pairing")]
    pub(crate) dm: String,
    /// Platform user ids always allowed (repeat or separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub(crate) allow: Vec<String>,
    /// Groups: mention (answer only when mentioned or replied to), all, or off.
    #[arg(long, default_value = "mention")]
    pub(crate) groups: String,
    /// Tools answers on this channel may use, narrowing the agent's own list (comma
    /// separated); `none` allows none. Default: the agent's tools.
    #[arg(long, value_delimiter = ',')]
    pub(crate) tools: Option<Vec<String>>,
}

/// What every `channel add` takes.
#[derive(Debug, Args, Clone)]
pub(crate) struct ChannelAddCommon {
    /// The agent that answers (name or id).
    #[arg(long)]
    pub(crate) agent: String,
    /// A name for the channel (default: the platform's name).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// The platform API's base URL (a self-hosted server, a proxy).
    #[arg(long)]
    pub(crate) api_base: Option<String>,
    #[command(flatten)]
    pub(crate) access: AccessArgs,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ChannelAddCommand {
    /// A Telegram bot (token from @BotFather).
    Telegram {
        /// The bot token; read from standard input when omitted.
        #[arg(long)]
        token: Option<String>,
        /// polling (default) or webhook.
        #[arg(long, default_value = "polling")]
        mode: String,
        /// Webhook mode: the public HTTPS URL Telegram posts to (default: the server's
        /// public URL + /channels/ID/webhook).
        #[arg(long)]
        webhook_url: Option<String>,
        #[command(flatten)]
        common: ChannelAddCommon,
    },
    /// A Discord bot (token from the developer portal; enable the Message Content intent).
    Discord {
        /// The bot token; read from standard input when omitted.
        #[arg(long)]
        token: Option<String>,
        /// The Gateway URL, instead of the one Discord names.
        #[arg(long)]
        gateway_url: Option<String>,
        #[command(flatten)]
        common: ChannelAddCommon,
    },
    /// A Slack app: a bot token plus an app-level token (Socket Mode) or a signing secret
    /// (Events API posted to /channels/ID/webhook).
    Slack {
        /// The bot token (xoxb-…).
        #[arg(long)]
        bot_token: String,
        /// The app-level token (xapp-…) for Socket Mode.
        #[arg(
            long,
            conflicts_with = "signing_secret",
            required_unless_present = "signing_secret"
        )]
        app_token: Option<String>,
        /// The signing secret, for the Events API.
        #[arg(long)]
        signing_secret: Option<String>,
        #[command(flatten)]
        common: ChannelAddCommon,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ChannelCommand {
    /// Add a channel; its credentials are checked with the platform first.
    #[command(subcommand)]
    Add(ChannelAddCommand),
    /// List your channels and their state.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a channel: settings, state, last error, pairings.
    Show {
        /// Name or id.
        channel: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a channel.
    Remove {
        /// Name or id.
        channel: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop receiving on a channel (kept; resume later).
    Pause {
        /// Name or id.
        channel: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Start receiving on a paused channel.
    Resume {
        /// Name or id.
        channel: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Replace a channel's access rules.
    Access {
        /// Name or id.
        channel: String,
        #[command(flatten)]
        access: AccessArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve the pairing code an unknown sender received.
    Approve {
        /// The code.
        code: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}
