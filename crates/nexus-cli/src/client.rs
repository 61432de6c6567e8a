//! Connecting to a server: address, API key lookup, and readable errors.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use nexus_gateway::pb::gateway_client::GatewayClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::args::ClientArgs;

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Clone, Debug)]
pub(crate) struct Auth(MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Auth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

pub(crate) type Client = GatewayClient<InterceptedService<Channel, Auth>>;

fn data_dir(args: &ClientArgs) -> PathBuf {
    args.data_dir
        .clone()
        .or_else(|| std::env::var_os("NEXUS_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("./nexus-data"))
}

/// The API key: `--api-key`, `NEXUS_API_KEY`, or the local server's `admin.key`.
fn api_key(args: &ClientArgs) -> anyhow::Result<String> {
    if let Some(key) = args.api_key.clone().filter(|k| !k.trim().is_empty()) {
        return Ok(key.trim().to_owned());
    }
    if let Ok(key) = std::env::var("NEXUS_API_KEY")
        && !key.trim().is_empty()
    {
        return Ok(key.trim().to_owned());
    }
    let path = nexus_gateway::bootstrap::admin_key_path(&data_dir(args));
    match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => Ok(key.trim().to_owned()),
        _ => Err(anyhow!(
            "no API key: pass --api-key, set NEXUS_API_KEY, or run next to a local server's data \
             directory ({} was not found; use --data-dir to point at it)",
            path.display()
        )),
    }
}

/// Connects to the server named by `args`.
pub(crate) async fn connect(args: &ClientArgs) -> anyhow::Result<Client> {
    let key = api_key(args)?;
    let header: MetadataValue<_> = format!("Bearer {key}")
        .parse()
        .context("the API key contains characters that cannot be sent")?;
    let endpoint = Endpoint::from_shared(args.server.clone())
        .with_context(|| format!("`{}` is not a valid server URL", args.server))?
        .tcp_nodelay(true)
        .connect_timeout(std::time::Duration::from_secs(5));
    let channel = endpoint.connect().await.map_err(|_| {
        anyhow!(
            "cannot reach the server at {}; start it with `nexus serve` or pass --server",
            args.server
        )
    })?;
    Ok(GatewayClient::with_interceptor(channel, Auth(header)))
}

/// A readable error for a failed call.
pub(crate) fn status(err: tonic::Status) -> anyhow::Error {
    use tonic::Code;
    let hint = match err.code() {
        Code::Unauthenticated => " (check --api-key / NEXUS_API_KEY)",
        Code::PermissionDenied => " (this needs an admin key)",
        Code::Unavailable => " (is the server running?)",
        _ => "",
    };
    anyhow!("{}{hint}", err.message())
}
