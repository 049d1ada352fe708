//! portico-load: an HTTP/1.1 load generator (closed loop for peak throughput, open loop with
//! coordinated-omission correction for latency), over plain TCP or TLS 1.3, WebSocket
//! message round trips (`ws`), and a fast benchmark origin.

mod chunked;
mod client;
mod http;
mod origin;
mod origin_ws;
mod parse;
mod rt;
mod stats;
mod stream;
mod tls;
mod ws;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "portico-load",
    version,
    about = "HTTP/1.1 (and HTTPS) load generator and benchmark origin for Portico",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve 200s with a fixed body on 127.0.0.1:PORT (and with --websocket, a WebSocket
    /// echo), for benchmarks.
    Origin(OriginArgs),
}

#[derive(Args)]
struct LoadArgs {
    /// Target, e.g. http://127.0.0.1:8080/path (https://… is the same as --tls)
    #[arg(required = true)]
    url: Option<String>,
    /// Keep-alive connections, spread over the threads.
    #[arg(short, long, default_value_t = 64)]
    connections: usize,
    /// How long to send load: 500ms, 10s, 1m.
    #[arg(short, long, default_value = "10s", value_parser = parse::duration)]
    duration: Duration,
    /// Open loop: total requests per second, on a fixed schedule; latency counts from
    /// each request's scheduled send time. Without it: closed loop, as fast as answered.
    #[arg(short, long)]
    rate: Option<f64>,
    /// Threads (one monoio runtime each); default: one per cpu in --cpus.
    #[arg(short, long)]
    threads: Option<usize>,
    /// Request method.
    #[arg(short, long, default_value = "GET")]
    method: String,
    /// Extra request header, `name: value`; repeatable.
    #[arg(short = 'H', long = "header", value_parser = parse::header)]
    headers: Vec<(String, String)>,
    /// Send a request body of this many bytes (with content-length).
    #[arg(short, long, default_value_t = 0)]
    body_size: usize,
    /// Send this file's bytes as the request body instead (a JSON document, say).
    #[arg(long, conflicts_with = "body_size")]
    body_file: Option<std::path::PathBuf>,
    /// Cpus to pin the threads to: `1`, `0,1`, `0-3`; default: all.
    #[arg(long, value_parser = parse::cpu_list)]
    cpus: Option<parse::CpuList>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Per-request timeout.
    #[arg(long, default_value = "5s", value_parser = parse::duration)]
    timeout: Duration,
    /// Speak TLS 1.3 to the target (ALPN http/1.1); one handshake per connection, before
    /// the run. Needs --ca or --insecure.
    #[arg(long)]
    tls: bool,
    /// TLS server name to send (SNI) and verify; default: the host of the target.
    #[arg(long, value_name = "NAME")]
    sni: Option<String>,
    /// PEM file of CA certificates to verify the server's certificate against.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    ca: Option<PathBuf>,
    /// Do not verify the server's certificate (the handshake signature still is).
    #[arg(long)]
    insecure: bool,
    /// Every request on a new connection (sent with `Connection: close`, the server's
    /// close awaited); connect and TLS handshake count in its latency. --connections
    /// is then how many are open at once.
    #[arg(long)]
    new_connection_per_request: bool,
    /// WebSocket message round trips instead of requests: each connection does the
    /// handshake to the target once (before the run), then every turn sends a text
    /// message of SIZE bytes (`{"action":"echo",…}`) and awaits one message back.
    #[arg(
        long,
        value_name = "SIZE",
        conflicts_with = "new_connection_per_request"
    )]
    websocket: Option<usize>,
}

#[derive(Args)]
struct OriginArgs {
    /// Port on 127.0.0.1.
    #[arg(short, long)]
    port: u16,
    /// Response body size in bytes.
    #[arg(short, long, default_value_t = 128)]
    body_size: usize,
    /// Serve a compressible JSON body (application/json) of that size.
    #[arg(long)]
    json: bool,
    /// Answer WebSocket handshakes (`Upgrade: websocket`) with a 101 and echo every
    /// frame; other requests still get the 200.
    #[arg(long)]
    websocket: bool,
    /// Cpus to pin the threads to; default: all.
    #[arg(long, value_parser = parse::cpu_list)]
    cpus: Option<parse::CpuList>,
    /// Threads; default: one per cpu in --cpus.
    #[arg(short, long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Origin(o)) => {
            let cpus = o.cpus.map_or_else(rt::all_cpus, |c| c.0);
            origin::serve(origin::OriginConfig {
                port: o.port,
                body_size: o.body_size,
                json: o.json,
                websocket: o.websocket,
                threads: o.threads.unwrap_or(cpus.len()),
                cpus,
            })
        }
        None => load(cli.load),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portico-load: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(a: LoadArgs) -> Result<(), String> {
    let url = a.url.as_deref().unwrap_or_default();
    let target = parse::url(url)?;
    let addr = target.resolve()?;
    if a.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if let Some(r) = a.rate {
        if !(r.is_finite() && r > 0.0) {
            return Err("--rate must be a positive number of requests per second".into());
        }
    }
    let method = a.method.to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!("invalid method `{}`", a.method));
    }
    if a.new_connection_per_request
        && a.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        return Err(
            "--new-connection-per-request sends `Connection: close` itself; drop the -H Connection"
                .into(),
        );
    }
    let use_tls = a.tls || target.tls;
    let tls = if use_tls {
        let verify = match (&a.ca, a.insecure) {
            (Some(path), _) => tls::Verify::Ca(path),
            (None, true) => tls::Verify::Insecure,
            (None, false) => {
                return Err(
                    "TLS needs --ca FILE (CA certificates to verify against) or --insecure".into(),
                )
            }
        };
        let default_name = target.host.trim_start_matches('[').trim_end_matches(']');
        Some(tls::TlsClient::new(
            a.sni.as_deref().unwrap_or(default_name),
            verify,
        )?)
    } else {
        if a.sni.is_some() || a.ca.is_some() || a.insecure {
            return Err("--sni, --ca and --insecure go with --tls (or an https:// target)".into());
        }
        None
    };
    let cpus = a.cpus.map_or_else(rt::all_cpus, |c| c.0);
    let threads = a.threads.unwrap_or(cpus.len()).clamp(1, a.connections);
    let body = match &a.body_file {
        Some(f) => std::fs::read(f).map_err(|e| format!("--body-file {}: {e}", f.display()))?,
        None => vec![b'x'; a.body_size],
    };
    let (request, websocket) = match a.websocket {
        Some(size) => (
            ws::message_frame(size),
            Some(&*ws::handshake_request(&target.authority, &target.path, &a.headers).leak()),
        ),
        None => (
            client::build_request(
                &method,
                &target.authority,
                &target.path,
                &a.headers,
                &body,
                a.new_connection_per_request,
            ),
            None,
        ),
    };
    let cfg: &'static client::LoadConfig = Box::leak(Box::new(client::LoadConfig {
        addr,
        request: request.leak(),
        head_method: method == "HEAD",
        connections: a.connections,
        duration: a.duration,
        rate: a.rate,
        threads,
        cpus,
        timeout: a.timeout,
        tls,
        new_connection: a.new_connection_per_request,
        websocket,
    }));
    let mode = match cfg.rate {
        Some(r) => format!("open loop at {r} req/s"),
        None => "closed loop".to_string(),
    };
    if !a.json {
        println!(
            "portico-load {}{url}{}: {} connections{}, {threads} thread(s) on cpus {:?}, {mode}, {:?}",
            match a.websocket {
                Some(n) => format!("WebSocket {n} B messages to "),
                None => format!("{method} "),
            },
            if use_tls && !target.tls { " over TLS" } else { "" },
            cfg.connections,
            if cfg.new_connection {
                " (a new one per request)"
            } else {
                ""
            },
            cfg.cpus,
            cfg.duration
        );
    }
    let (summary, driver) = client::run(cfg)?;
    let report = summary.report(cfg.duration);
    if a.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
        println!("  driver    {driver}");
    }
    Ok(())
}
