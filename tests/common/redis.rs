//! A private `redis-server` for cluster tests: on a free loopback port, in its own
//! directory, no persistence unless asked; killed when dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    appendonly: bool,
}

impl Redis {
    /// No persistence: `--save '' --appendonly no`.
    pub fn start() -> Redis {
        Self::start_at(super::free_port(), super::temp_dir("redis"), false)
    }

    /// Every write fsynced to an append-only file before Redis answers it.
    pub fn start_persistent() -> Redis {
        Self::start_at(super::free_port(), super::temp_dir("redis"), true)
    }

    fn start_at(port: u16, dir: PathBuf, appendonly: bool) -> Redis {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--dir", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if appendonly {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        let r = Redis {
            child: Some(child),
            port,
            dir,
            appendonly,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(r.addr()).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            thread::sleep(Duration::from_millis(20));
        }
        r
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and directory (after `kill`).
    pub fn restart(&mut self) {
        self.kill();
        let again = Self::start_at(self.port, self.dir.clone(), self.appendonly);
        *self = again;
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
