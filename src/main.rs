//! The `portico` command: `run` serves, `check` validates a config file, `routes` shows
//! what it would serve.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use mimalloc::MiMalloc;
use portico::config;
use tracing::{error, info, warn};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Turns transparent huge pages off for this process. The allocator asks for them on its
/// arenas, and whether the kernel has 2 MiB pages to give then decides the resident
/// memory: 10,000 idle keep-alive connections measured 4.5-5.0 KiB each with them and
/// 2.9 KiB without, and the baseline 16 MiB instead of 8.5. Portico's heap is a few MiB
/// per worker, too small for huge pages to save TLB misses that matter (and THP
/// compaction stalls are a known latency hazard for servers).
fn no_transparent_huge_pages() {
    // SAFETY: prctl with integer arguments only; it changes a flag of this process.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

#[derive(Parser)]
#[command(
    name = "portico",
    version,
    about = "Self-hosted API gateway and edge proxy"
)]
struct Cli {
    /// Config file [default: config/portico.yaml, else /etc/portico/portico.yaml]
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default). SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the config;
    /// SIGUSR1 reopens the access log.
    Run,
    /// Validate a config file: exit 0, or 1 with every error; every warning too, each
    /// with its key path.
    Check,
    /// What would be served: domain and base path, API, stage, route, integration, auth.
    Routes {
        /// The JSON that admin `GET /routes` answers.
        #[arg(long)]
        json: bool,
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

/// Blocks the signals `run` handles and returns the mask to restore. Until `run` has
/// its handlers, their default action would end the process: a SIGHUP sent right after
/// exec (systemd's `Type=exec` counts the service as started then, so `systemctl
/// reload` may follow at once) killed it while logging and arguments were set up.
/// Blocked, it waits for the handler.
fn hold_signals() -> libc::sigset_t {
    use libc::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    // SAFETY: sigset_t is plain data, initialised by sigemptyset/pthread_sigmask; only
    // this (so far the only) thread's mask changes.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [SIGTERM, SIGINT, SIGHUP, SIGUSR1] {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

/// Puts back the mask [`hold_signals`] found: a signal that came meanwhile is delivered
/// now, to `run`'s handler or, for the other commands, with its default action as before.
fn release_signals(old: &libc::sigset_t) {
    // SAFETY: `old` came from pthread_sigmask; set before any thread is spawned, so the
    // threads inherit it.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

/// A write past the file size limit (`ulimit -f`, systemd's `LimitFSIZE=`) fails with
/// EFBIG, reported where it happens (the state store, an access log), instead of killing
/// the process: SIGXFSZ's default action killed a first start halfway through creating
/// its state file, and the empty file then stopped every later start.
fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread is spawned.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
}

fn main() -> ExitCode {
    let held = hold_signals();
    ignore_file_size_signal();
    no_transparent_huge_pages();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_writer(portico::metrics::log_writer::EscapedStderr { ansi })
        // A log line that can't be written (stderr a pipe whose reader left) is lost, not
        // reported with `eprintln!`, which panics on that same stderr: the thread that
        // logged died (the signal thread: SIGTERM then did nothing).
        .log_internal_errors(false)
        .with_ansi(ansi)
        .fmt_fields(portico::metrics::log_writer::fields())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // rustls logs what a client's handshake does wrong (a refused
                // renegotiation, a bad alert) at warn: any client could fill the log.
                // Portico logs handshake failures itself, at debug.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rustls=error")),
        )
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_says(&e),
    };
    let defaulted = cli.config.is_none();
    let path = cli.config.unwrap_or_else(default_config);
    let command = cli.command.unwrap_or(Command::Run);
    let needs_config = !matches!(
        command,
        Command::Openapi(portico::openapi::cli::Command::Import { .. })
    );
    if defaulted && needs_config && !path.exists() {
        // Said whole: the error for the fallback alone never told a user who ran it from
        // another directory that `config/portico.yaml` was looked for first.
        portico::say!("portico: no config file: neither config/portico.yaml (in the current directory) nor /etc/portico/portico.yaml exists; give one with -c FILE");
        return ExitCode::from(1);
    }
    if !matches!(command, Command::Run) {
        release_signals(&held);
    }
    match command {
        Command::Check => check(&path),
        Command::Routes { json } => routes(&path, json),
        Command::Run => run(&path, &held),
        Command::Openapi(cmd) => portico::openapi::cli::run(cmd, &path),
    }
}

/// What clap has to say (help and version on stdout, a usage error on stderr), with its
/// exit code (0, or 2 for a usage error). Help or version that can't be written is said
/// and exits 1, as every command's output: clap's own `exit` reported it as success.
fn clap_says(e: &clap::Error) -> ExitCode {
    let code = ExitCode::from(e.exit_code() as u8);
    // clap's own printing loses a failed write (its colour-stripping stream), so text
    // for anything but a terminal is written here, without colours.
    let terminal = match e.use_stderr() {
        true => std::io::IsTerminal::is_terminal(&std::io::stderr()),
        false => std::io::IsTerminal::is_terminal(&std::io::stdout()),
    };
    if terminal {
        let _ = e.print();
        return code;
    }
    let text = e.render().to_string();
    if e.use_stderr() {
        portico::say!("{}", text.trim_end_matches('\n'));
        return code;
    }
    match portico::stdout::write(&text) {
        c if c == ExitCode::SUCCESS => code,
        failed => failed,
    }
}

fn routes(path: &Path, json: bool) -> ExitCode {
    let cfg = match config::load_and_validate(path) {
        Ok(cfg) => cfg,
        Err(errors) => {
            portico::say!("{}: {} error(s)", path.display(), errors.0.len());
            portico::say!("{errors}");
            return ExitCode::from(1);
        }
    };
    let stages = config::served::stages(&cfg);
    // Written, not printed: `portico routes | head` closes the pipe early, and
    // println! would panic on that.
    portico::stdout::write(&if json {
        let mut text =
            String::from_utf8(config::served::to_json(&stages, true)).expect("JSON is UTF-8");
        text.push('\n');
        text
    } else {
        config::served::to_text(&stages)
    })
}

/// Reads and checks the file: the report and the text.
fn report(path: &Path, more: config::Extra) -> (config::Report, String) {
    match config::read(path) {
        Ok(text) => (config::check_file_text_with(&text, path, more), text),
        Err(errors) => {
            let report = config::Report {
                config: None,
                errors: errors.0,
                warnings: Vec::new(),
            };
            (report, String::new())
        }
    }
}

/// ", N warning(s)" when there are any.
fn warning_count(report: &config::Report) -> String {
    match report.warnings.len() {
        0 => String::new(),
        n => format!(", {n} warning(s)"),
    }
}

fn check(path: &Path) -> ExitCode {
    // Upstream names that don't resolve now: valid, but worth saying (`run`'s resolver
    // logs the same when it looks them up), whatever else is wrong.
    let names = |cfg: &config::Config| portico::upstream::resolve::check_names(&cfg.upstreams);
    let (mut report, text) = report(path, &names);
    if let Some(cfg) = &report.config {
        if let Some(c) = &cfg.cluster {
            report.warnings.extend(cluster_drift(c, &text));
        }
    }
    let code = if report.errors.is_empty() {
        let ok = format!("{}: ok{}\n", path.display(), warning_count(&report));
        portico::stdout::write(&ok)
    } else {
        portico::say!(
            "{}: {} error(s){}",
            path.display(),
            report.errors.len(),
            warning_count(&report)
        );
        portico::say!("{}", config::ConfigErrors(report.errors.clone()));
        ExitCode::from(1)
    };
    for w in &report.warnings {
        portico::say!("warning: {w}");
    }
    code
}

/// `check` with a `cluster`: whether this file is the config the cluster last published.
/// Redis being unreachable is a warning too: the file is still valid.
fn cluster_drift(c: &config::model::Cluster, text: &str) -> Option<config::ConfigError> {
    let mine = portico::cluster::hash_text(text);
    let timeout = c.timeout.max(std::time::Duration::from_millis(300));
    let say = |m: String| Some(config::ConfigError::new("cluster.redis", m));
    match portico::cluster::admin::published_hash(&c.redis, &c.prefix, timeout) {
        Ok(Some(theirs)) if theirs == mine => None,
        Ok(Some(theirs)) => say(format!(
            "this file (config hash {mine}) differs from the config the cluster last published ({theirs})"
        )),
        Ok(None) => None,
        Err(e) => say(format!(
            "cannot reach Redis to compare config hashes ({}); not checked",
            portico::cluster::admin::Failure(&e)
        )),
    }
}

/// Raises the soft limit on open files to the hard one (as Go's runtime and nginx's
/// `worker_rlimit_nofile` do): a shell's usual 1024 let about a thousand idle keep-alive
/// connections from one client lock every new client out ("Too many open files").
fn raise_open_files_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the calls to read and write.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            // A hard limit past the kernel's `fs.nr_open` is refused: then 2^20 (its
            // usual value) will do.
            let capped = libc::rlimit {
                rlim_cur: lim.rlim_max.min(1 << 20),
                rlim_max: lim.rlim_max,
            };
            for attempt in [raised, capped] {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &attempt) == 0 {
                    lim = attempt;
                    break;
                }
            }
        }
    }
    info!(open_files = lim.rlim_cur, "open files limit");
}

fn run(path: &Path, held: &libc::sigset_t) -> ExitCode {
    // Handlers first: a SIGHUP (a `systemctl reload` right after start) or SIGTERM that
    // arrives while the config loads is queued for the signal thread, not fatal.
    let signals = register_signals();
    release_signals(held);
    let (report, text) = report(path, &|_| Vec::new());
    let Some(cfg) = report.config else {
        // The warnings too, as `check` prints them: one may explain an error, and the
        // next start should not be the first to show them.
        portico::say!(
            "{}: {} error(s){}; not starting",
            path.display(),
            report.errors.len(),
            warning_count(&report)
        );
        portico::say!("{}", config::ConfigErrors(report.errors.clone()));
        for w in &report.warnings {
            portico::say!("warning: {w}");
        }
        return ExitCode::from(1);
    };
    config::warnings::log(&report.warnings);
    let mut snapshot = config::compile::compile(&cfg);
    snapshot.view = config::view::redacted_view(&text);
    snapshot.config_hash = portico::cluster::hash_text(&text);
    portico::cluster::set_config_hash(snapshot.config_hash.clone());
    portico::metrics::access_log::configure(&snapshot.server.access_log.path);
    let snapshot = Arc::new(snapshot);
    portico::runtime::reload::install(path, snapshot);
    portico::runtime::reload::spawn_watcher(path);
    if let Some(signals) = signals {
        spawn_signal_thread(signals);
    }
    raise_open_files_limit();
    info!(config = %path.display(), "starting");
    match portico::runtime::run() {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("{e}");
            portico::say!("portico: {e}");
            ExitCode::from(1)
        }
    }
}

fn register_signals() -> Option<signal_hook::iterator::Signals> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
    // SIGQUIT stops gracefully, as nginx's does (its default action killed the process,
    // undrained); SIGUSR2, nginx's binary upgrade, is logged and ignored (it killed too).
    match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2])
    {
        Ok(s) => Some(s),
        Err(e) => {
            warn!("cannot install signal handlers: {e}");
            None
        }
    }
}

fn spawn_signal_thread(mut signals: signal_hook::iterator::Signals) {
    use signal_hook::consts::{SIGHUP, SIGUSR1, SIGUSR2};
    std::thread::Builder::new()
        .name("portico-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGUSR1 {
                    portico::metrics::access_log::reopen();
                    continue;
                }
                if sig == SIGUSR2 {
                    warn!("SIGUSR2 ignored: Portico has no binary upgrade (SIGHUP reloads the config; a new binary needs a restart)");
                    continue;
                }
                if sig == SIGHUP {
                    // Errors are logged by reload(); the running config stays.
                    let _ = portico::runtime::reload::reload();
                    continue;
                }
                if portico::runtime::shutdown::request_stop() {
                    warn!(signal = sig, "stopping now: closing what is still open");
                } else {
                    info!(signal = sig, "stopping: draining in-flight requests");
                }
            }
        })
        .expect("spawning the signal thread");
}
