//! What the tests against a real benchmark server share: the server (in this process, or as a
//! child process) and the client runtime.

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use storex_bench::server::{bind_tuned, ServerOptions, Tuning};

/// Starts the benchmark server with `tuning` on its own thread and actix system; its address.
pub fn start_server(tuning: Tuning) -> SocketAddr {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let options = ServerOptions {
                addr: ([127, 0, 0, 1], 0).into(),
                workers: 1,
            };
            let (server, addr) = bind_tuned(&options, &tuning).expect("bind a loopback port");
            sender.send(addr).expect("tell the test");
            let _ = server.await;
        });
    });
    receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("the server starts")
}

/// The clients' runtime: two worker threads.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// How long a server process may take to say where it listens (a loaded machine, a node that
/// waits for Redis first).
const START_LIMIT: Duration = Duration::from_secs(30);

/// A `storex-bench-server` process of this test: killed by its PID and reaped when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// The `LISTENING <addr>` line, read by a thread of its own.
    line: std::sync::mpsc::Receiver<String>,
    addr: Option<SocketAddr>,
}

impl ServerProcess {
    /// Starts the server binary with `args` (its standard error is the test's).
    pub fn spawn(args: &[&str]) -> Self {
        Self::spawn_with_env(args, &[])
    }

    /// [`spawn`](Self::spawn) with environment variables (the server's `Tuning`).
    pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_storex-bench-server"))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start storex-bench-server");
        let stdout = child.stdout.take().expect("the server's stdout is piped");
        let (sender, line) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            if BufReader::new(stdout).read_line(&mut line).is_ok() {
                let _ = sender.send(line);
            }
        });
        Self {
            child,
            line,
            addr: None,
        }
    }

    /// Where it listens: waits for its `LISTENING` line.
    pub fn addr(&mut self) -> SocketAddr {
        if let Some(addr) = self.addr {
            return addr;
        }
        let pid = self.child.id();
        let line = match self.line.recv_timeout(START_LIMIT) {
            Ok(line) => line,
            Err(_) => {
                let status = self.child.try_wait().ok().flatten();
                panic!(
                    "storex-bench-server (pid {pid}) did not say where it listens within \
                     {START_LIMIT:?} (exit status: {status:?}; its standard error is above)"
                )
            }
        };
        let addr = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("storex-bench-server (pid {pid}) said {line:?}"));
        self.addr = Some(addr);
        addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it with SIGKILL (no goodbye to anyone) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
