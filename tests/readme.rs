//! The README works as written:
//! (a) every relative link in README.md and docs/*.md reaches a file (and a heading, for
//!     `#anchor` links), and nothing in the repository points outside it;
//! (b) the README's `curl` examples, run with the real `curl` against a real portico on
//!     the config the README starts just before them (ports rewritten, nothing else),
//!     give the statuses and bodies the README shows next to them;
//! (c) `portico check` accepts every shipped config, from any working directory, and the
//!     README's config examples that stand alone (given the upstreams they name).
//!
//! What the README "shows" for a `curl` line is its comment (after `  #`) and the `# …`
//! lines right under it: a leading 3-digit number is the status (else any 2xx), and a
//! `{…}` in it is the exact body, where `…` stands for any text.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_portico");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------- (a) links

/// GitHub's heading anchors: lower case, punctuation dropped, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// Every `[text](target)` outside code blocks.
fn links(markdown: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![Path::new(ROOT).join("README.md")];
    let docs = Path::new(ROOT).join("docs");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&docs)
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    found.sort();
    assert!(
        found.iter().any(|p| p.ends_with("ARCHITECTURE.md")),
        "{found:?}"
    );
    files.extend(found);
    files
}

#[test]
fn relative_links_reach_files_and_headings() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let text = read(&file);
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", file.display()));
                continue;
            }
            let is_md = target.extension().is_some_and(|e| e == "md");
            if !anchor.is_empty() && is_md && !anchors(&read(&target)).iter().any(|a| a == anchor) {
                broken.push(format!("{}: {link}: no such heading", file.display()));
            }
        }
    }
    assert!(
        checked > 10,
        "only {checked} links found: is the parser right?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Every text file of the repository (build output and VCS data aside).
fn repository_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "state") {
                repository_files(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

#[test]
fn nothing_points_outside_the_repository() {
    // Spelled in pieces so that this file does not match itself.
    let outside = [
        concat!("..", "/shared"),
        concat!("DESIGN", ".md"),
        concat!("DESIGN", " §"),
    ];
    let mut files = Vec::new();
    repository_files(Path::new(ROOT), &mut files);
    assert!(
        files.len() > 50,
        "{} files: is the walk right?",
        files.len()
    );
    let mut hits = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue; // not text
        };
        for (n, line) in text.lines().enumerate() {
            if outside.iter().any(|o| line.contains(o)) {
                hits.push(format!("{}:{}: {line}", file.display(), n + 1));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "references outside the repository:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_license_cargo_toml_names_is_there() {
    let manifest = read(&Path::new(ROOT).join("Cargo.toml"));
    assert!(manifest.contains("license = \"Apache-2.0\""));
    let license = read(&Path::new(ROOT).join("LICENSE"));
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
    assert!(
        license.contains("END OF TERMS AND CONDITIONS"),
        "the full text"
    );
}

// ---------------------------------------------------------------- (b) curl examples

/// One `curl` line of the README and what the README shows for it.
#[derive(Debug)]
struct Example {
    line: usize,
    command: String,
    config: String,
    env: Vec<(String, String)>,
    status: Option<u16>,
    body: Option<String>,
}

/// The config a "start it" line of the README runs: `cargo run --release` (the default
/// config) or `… run -c FILE`.
fn started_config(line: &str) -> Option<String> {
    let line = line.split("  #").next().unwrap().trim();
    if !(line.starts_with("cargo run") || line.starts_with("portico")) {
        return None;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    if let Some(i) = words.iter().position(|w| *w == "-c") {
        return words.get(i + 1).map(|s| s.to_string());
    }
    (line.starts_with("cargo run") && !line.contains("check")).then(|| "config/portico.yaml".into())
}

/// The first balanced `{…}` in a comment.
fn json_in(text: &str) -> Option<String> {
    let start = text.find('{')?;
    let mut depth = 0;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(text[start..start + i + 1].to_string());
                }
            }
            _ => {}
        }
    }
    None
}

fn examples(readme: &str) -> Vec<Example> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut config: Option<String> = None;
    let mut env: Vec<(String, String)> = Vec::new();
    let mut in_sh = false;
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("```") {
            in_sh = *line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(c) = started_config(line) {
            config = Some(c);
            env.clear();
            continue;
        }
        let assignment = line.split_once('=').filter(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        });
        if let Some((name, value)) = assignment {
            env.push((name.to_string(), value.trim().to_string()));
            continue;
        }
        if !line.starts_with("curl ") {
            continue;
        }
        let (command, comment) = match line.split_once("  #") {
            Some((c, rest)) => (c.trim(), rest.trim().to_string()),
            None => (line.trim(), String::new()),
        };
        let mut shown = comment;
        for next in &lines[i + 1..] {
            match next.strip_prefix("# ") {
                Some(text) => shown = format!("{shown} {text}"),
                None => break,
            }
        }
        let shown = shown.trim();
        let status = shown
            .get(..3)
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .filter(|_| shown.len() == 3 || shown.as_bytes()[3] == b' ')
            .map(|s| s.parse().unwrap());
        out.push(Example {
            line: i + 1,
            command: command.to_string(),
            config: config
                .clone()
                .unwrap_or_else(|| panic!("README line {}: curl before any start line", i + 1)),
            env: env.clone(),
            status,
            body: json_in(shown),
        });
    }
    out
}

/// `…` in the README stands for any text.
fn matches_shown(shown: &str, got: &str) -> bool {
    let parts: Vec<&str> = shown.split('…').collect();
    if parts.len() == 1 {
        return shown == got;
    }
    let mut rest = got;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

/// Runs `command` with the real curl; returns (status, body).
fn curl(command: &str, env: &[(String, String)]) -> (u16, String) {
    let full = format!("{command} -sS --max-time 10 -w '\\n@status=%{{http_code}}'");
    let out = Command::new("sh")
        .args(["-c", &full])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("sh and curl (the tests need curl)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text
        .rsplit_once("\n@status=")
        .unwrap_or_else(|| panic!("{full}: {text}{}", String::from_utf8_lossy(&out.stderr)));
    let body = if command.contains(" -i") {
        body.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    } else {
        body
    };
    (
        status.trim().parse().unwrap_or(0),
        body.trim_end().to_string(),
    )
}

/// `portico run -c FILE` on a config file as it is (the harness's `Portico` writes its own).
struct Served {
    child: Option<std::process::Child>,
    log: PathBuf,
}

impl Served {
    fn start(config: &Path, driver: &str, port: u16) -> Served {
        let log = config.with_extension("log");
        let child = Command::new(BIN)
            .args(["run", "-c"])
            .arg(config)
            .env("PORTICO_DRIVER", driver)
            .env_remove("STATE_DIRECTORY")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Served {
            child: Some(child),
            log,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = s.child.as_mut().unwrap().try_wait().unwrap();
            assert!(exited.is_none(), "portico exited: {}", read(&s.log));
            assert!(
                std::time::Instant::now() < deadline,
                "not listening: {}",
                read(&s.log)
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        s
    }

    fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{status}: {}", read(&self.log));
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const README_HTTP: &str = "127.0.0.1:8080";
const README_ADMIN: &str = "127.0.0.1:9901";

#[test]
fn readme_curl_examples_answer_as_shown() {
    let readme = read(&Path::new(ROOT).join("README.md"));
    let all = examples(&readme);
    assert!(
        all.len() >= 8,
        "{} curl examples found: is the parser right?",
        all.len()
    );
    let mut by_config: Vec<(String, Vec<&Example>)> = Vec::new();
    for ex in &all {
        match by_config.iter_mut().find(|(c, _)| *c == ex.config) {
            Some((_, list)) => list.push(ex),
            None => by_config.push((ex.config.clone(), vec![ex])),
        }
    }
    for driver in DRIVERS {
        for (config, list) in &by_config {
            let (http, admin) = (free_port(), free_port());
            let ports: HashMap<&str, String> = [
                (README_HTTP, format!("127.0.0.1:{http}")),
                (README_ADMIN, format!("127.0.0.1:{admin}")),
            ]
            .into();
            let rewrite = |s: &str| {
                ports
                    .iter()
                    .fold(s.to_string(), |s, (from, to)| s.replace(from, to))
            };
            let yaml = rewrite(&read(&Path::new(ROOT).join(config)));
            // An `openapi:` file named relative to the config stays where it is.
            let base = Path::new(ROOT).join(config);
            let base = base.parent().unwrap();
            let yaml: String = yaml
                .lines()
                .map(|l| match l.split_once("openapi: ") {
                    Some((pre, f)) if pre.trim().is_empty() && !f.starts_with('/') => {
                        format!("{pre}openapi: {}\n", base.join(f).display())
                    }
                    _ => format!("{l}\n"),
                })
                .collect();
            // Written to a fresh directory, so a relative state_dir lands there too.
            let dir = temp_dir("readme");
            let file = dir.join("portico.yaml");
            std::fs::write(&file, &yaml).unwrap();
            let p = Served::start(&file, driver, http);
            for ex in list {
                let what = format!(
                    "{driver}, README line {} ({config}): {}",
                    ex.line, ex.command
                );
                let (status, body) = curl(&rewrite(&ex.command), &ex.env);
                match ex.status {
                    Some(want) => assert_eq!(status, want, "{what}: {body}"),
                    None => assert!((200..300).contains(&status), "{what}: {status} {body}"),
                }
                if let Some(shown) = &ex.body {
                    assert!(
                        matches_shown(shown, &body),
                        "{what}\n  README shows {shown}\n  got          {body}"
                    );
                }
            }
            p.stop();
        }
    }
}

// ---------------------------------------------------------------- (c) shipped configs

#[test]
fn check_accepts_every_shipped_config_from_anywhere() {
    let mut files = Vec::new();
    for dir in ["config", "config/examples"] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        found.sort();
        files.extend(found);
    }
    assert!(files.len() >= 6, "{files:?}");
    for file in &files {
        for cwd in [Path::new(ROOT), Path::new("/")] {
            let (code, text) = check_file(file, cwd);
            assert_eq!(
                code,
                Some(0),
                "{} (from {}):\n{text}",
                file.display(),
                cwd.display()
            );
        }
    }
}

/// `portico check -c FILE` run from `cwd`: its exit code and what it printed.
fn check_file(file: &Path, cwd: &Path) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(file)
        .current_dir(cwd)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// README config examples `check` must accept: the heading they follow (the first
/// `yaml` block after it) and what they name without defining it.
const STANDALONE_EXAMPLES: &[(&str, &str)] = &[(
    "### `apis`",
    "upstreams:\n  users: { targets: [\"127.0.0.1:9\"] }\n",
)];

#[test]
fn check_accepts_the_readme_config_examples() {
    let readme = read(&Path::new(ROOT).join("README.md"));
    let dir = temp_dir("readme-examples");
    for (heading, around) in STANDALONE_EXAMPLES {
        let after = readme
            .lines()
            .skip_while(|l| l != heading)
            .skip_while(|l| *l != "```yaml")
            .skip(1);
        let block: Vec<&str> = after.take_while(|l| *l != "```").collect();
        assert!(!block.is_empty(), "no yaml block after {heading}");
        let file = dir.join("example.yaml");
        std::fs::write(&file, block.join("\n") + "\n" + around).unwrap();
        let (code, text) = check_file(&file, Path::new(ROOT));
        assert_eq!(code, Some(0), "the example after {heading}:\n{text}");
    }
}
