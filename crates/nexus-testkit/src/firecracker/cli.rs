//! Firecracker's command line, for the `fake-firecracker` process: `--api-sock PATH`, `--id ID`,
//! `--config-file FILE` (configure and start without API calls), `--no-api`; the other real
//! flags are accepted and ignored; anything else is refused like Firecracker does (exit 153).

use std::io::Write;
use std::path::PathBuf;

use serde_json::Value;

use super::FakeFirecracker;
use super::config::FakeFirecrackerConfig;

/// Exit code of Firecracker for a bad command line (`FcExitCode::ArgParsing`).
const EXIT_ARG_PARSING: i32 = 153;
/// Exit code of Firecracker for other start-up errors (`FcExitCode::GenericError`).
const EXIT_GENERIC: i32 = 1;

const WITH_VALUE: &[&str] = &[
    "--api-sock",
    "--id",
    "--config-file",
    "--log-path",
    "--level",
    "--module",
    "--metrics-path",
    "--seccomp-filter",
    "--start-time-us",
    "--start-time-cpu-us",
    "--parent-cpu-time-us",
    "--http-api-max-payload-size",
    "--mmds-size-limit",
    "--describe-snapshot",
];
const FLAGS: &[&str] = &[
    "--no-api",
    "--no-seccomp",
    "--boot-timer",
    "--show-level",
    "--show-log-origin",
    "--enable-pci",
];

#[derive(Debug, Default)]
struct Args {
    api_sock: Option<PathBuf>,
    id: Option<String>,
    config_file: Option<PathBuf>,
    no_api: bool,
    version: bool,
}

fn parse(argv: &[String]) -> Result<Args, String> {
    let mut args = Args::default();
    let mut words = argv.iter();
    while let Some(word) = words.next() {
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (word.as_str(), None),
        };
        if name == "--version" {
            args.version = true;
        } else if FLAGS.contains(&name) {
            args.no_api |= name == "--no-api";
        } else if WITH_VALUE.contains(&name) {
            let value = match inline {
                Some(value) => value,
                None => words
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("Argument '{name}' requires a value"))?,
            };
            match name {
                "--api-sock" => args.api_sock = Some(PathBuf::from(value)),
                "--id" => args.id = Some(value),
                "--config-file" => args.config_file = Some(PathBuf::from(value)),
                _ => {}
            }
        } else {
            return Err(format!(
                "Found argument '{word}' which wasn't expected, or isn't valid in this context."
            ));
        }
    }
    if args.no_api && args.config_file.is_none() {
        return Err("Argument '--no-api' requires '--config-file'".to_owned());
    }
    Ok(args)
}

/// Firecracker's rule for `--id`: 1 to 64 alphanumeric characters or `-`.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Runs the fake like the `firecracker` binary with `argv` (without the program name), its
/// behaviour configured by [`FakeFirecrackerConfig::from_env`]; returns the exit code.
pub async fn run(argv: Vec<String>) -> i32 {
    let args = match parse(&argv) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("Arguments parsing error: {message}");
            return EXIT_ARG_PARSING;
        }
    };
    let config = match FakeFirecrackerConfig::from_env() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("[fake-firecracker] {message}");
            return EXIT_GENERIC;
        }
    };
    if args.version {
        let _ = writeln!(std::io::stdout(), "Firecracker v{}", config.version);
        return 0;
    }
    let id = args.id.unwrap_or_else(|| "anonymous-instance".to_owned());
    if !valid_id(&id) {
        eprintln!("Invalid instance ID: {id}");
        return EXIT_GENERIC;
    }
    let api_sock = match (args.no_api, args.api_sock) {
        (true, _) => {
            std::env::temp_dir().join(format!("fake-firecracker-{}.sock", std::process::id()))
        }
        (false, Some(path)) => path,
        (false, None) => PathBuf::from("/run/firecracker.socket"),
    };
    if api_sock.exists() {
        eprintln!(
            "Failed to open the API socket at: {}. Check that it is not already used.",
            api_sock.display()
        );
        return EXIT_GENERIC;
    }
    let fake = match FakeFirecracker::start_with_id(&api_sock, &id, config).await {
        Ok(fake) => fake,
        Err(err) => {
            eprintln!(
                "Failed to open the API socket at: {}: {err}",
                api_sock.display()
            );
            return EXIT_GENERIC;
        }
    };
    if let Some(file) = args.config_file
        && let Err(message) = configure_from_file(&fake, &file)
    {
        eprintln!("Configuration for VMM from one single json failed: {message}");
        return EXIT_GENERIC;
    }
    let code = fake.exited().await;
    // A process that exits leaves its sockets behind; the in-process fake's drop removes them,
    // so keep them like the real binary would.
    std::mem::forget(fake);
    code
}

/// Applies a `--config-file` (the keys of `GET /vm/config`) through the API state machine,
/// then starts the VM.
fn configure_from_file(fake: &FakeFirecracker, path: &PathBuf) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let config: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut puts: Vec<(String, Value)> = Vec::new();
    if let Some(boot) = config.get("boot-source") {
        puts.push(("/boot-source".to_owned(), boot.clone()));
    }
    for drive in config
        .get("drives")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = drive
            .get("drive_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        puts.push((format!("/drives/{id}"), drive.clone()));
    }
    if let Some(machine) = config.get("machine-config") {
        puts.push(("/machine-config".to_owned(), machine.clone()));
    }
    for iface in config
        .get("network-interfaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = iface
            .get("iface_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        puts.push((format!("/network-interfaces/{id}"), iface.clone()));
    }
    if let Some(vsock) = config.get("vsock") {
        puts.push(("/vsock".to_owned(), vsock.clone()));
    }
    puts.push((
        "/actions".to_owned(),
        serde_json::json!({ "action_type": "InstanceStart" }),
    ));
    for (path, body) in puts {
        fake.apply("PUT", &path, &body)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{parse, valid_id};

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn firecracker_flags_are_accepted_and_unknown_ones_refused() {
        let args = parse(&words(
            "--api-sock /tmp/a.sock --id vm-1 --level Debug --boot-timer",
        ))
        .unwrap();
        assert_eq!(args.api_sock.unwrap().to_str(), Some("/tmp/a.sock"));
        assert_eq!(args.id.as_deref(), Some("vm-1"));
        assert!(parse(&words("--api-sock")).is_err());
        assert!(parse(&words("--bogus")).is_err());
        assert!(
            parse(&words("--no-api")).is_err(),
            "--no-api needs --config-file"
        );
    }

    #[test]
    fn instance_ids_follow_firecracker_rules() {
        assert!(valid_id("0b5e-vm"));
        assert!(!valid_id("a_b"));
        assert!(!valid_id(""));
        assert!(!valid_id(&"a".repeat(65)));
    }
}
