//! The `portico` command: `run` serves, `check` validates a config file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use mimalloc::MiMalloc;
use portico::config;
use tracing::{error, info, warn};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Parser)]
#[command(
    name = "portico",
    version,
    about = "Self-hosted API gateway and edge proxy"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default). SIGTERM/SIGINT drain and exit 0.
    Run {
        /// Config file [default: config/portico.yaml, else /etc/portico/portico.yaml]
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Validate a config file: exit 0, or 1 with every error and its key path.
    Check {
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// OpenAPI definitions: import a file as Portico config, export an API.
    #[command(subcommand)]
    Openapi(portico::openapi::cli::Command),
}

fn default_config() -> PathBuf {
    let local = Path::new("config/portico.yaml");
    if local.exists() {
        local.to_path_buf()
    } else {
        PathBuf::from("/etc/portico/portico.yaml")
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run { config: None }) {
        Command::Check { config } => check(&config.unwrap_or_else(default_config)),
        Command::Run { config } => run(&config.unwrap_or_else(default_config)),
        Command::Openapi(cmd) => portico::openapi::cli::run(cmd, &default_config()),
    }
}

fn check(path: &Path) -> ExitCode {
    match config::load_and_validate(path) {
        Ok(cfg) => {
            for w in &cfg.warnings {
                eprintln!("warning: {w}");
            }
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{}: {} error(s)", path.display(), errors.0.len());
            eprintln!("{errors}");
            ExitCode::from(1)
        }
    }
}

fn run(path: &Path) -> ExitCode {
    let loaded =
        config::read(path).and_then(|text| Ok((config::load_and_validate_text(&text)?, text)));
    let (cfg, text) = match loaded {
        Ok(cfg) => cfg,
        Err(errors) => {
            eprintln!(
                "{}: {} error(s); not starting",
                path.display(),
                errors.0.len()
            );
            eprintln!("{errors}");
            return ExitCode::from(1);
        }
    };
    config::warn_risky(&cfg);
    let mut snapshot = config::compile::compile(&cfg);
    snapshot.view = config::view::redacted_view(&text);
    portico::metrics::access_log::configure(&snapshot.server.access_log.path);
    let snapshot = Arc::new(snapshot);
    portico::runtime::reload::install(path, snapshot);
    portico::runtime::reload::spawn_watcher(path);
    spawn_signal_thread();
    info!(config = %path.display(), "starting");
    match portico::runtime::run() {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("{e}");
            eprintln!("portico: {e}");
            ExitCode::from(1)
        }
    }
}

fn spawn_signal_thread() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
    {
        Ok(s) => s,
        Err(e) => {
            warn!("cannot install signal handlers: {e}");
            return;
        }
    };
    std::thread::Builder::new()
        .name("portico-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGUSR1 {
                    portico::metrics::access_log::reopen();
                    continue;
                }
                if sig == SIGHUP {
                    // Errors are logged by reload(); the running config stays.
                    let _ = portico::runtime::reload::reload();
                    continue;
                }
                info!(signal = sig, "stopping: draining in-flight requests");
                portico::runtime::shutdown::request_stop();
            }
        })
        .expect("spawning the signal thread");
}
