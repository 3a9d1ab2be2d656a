//! The real binary as an operator runs it: `serve` on a fresh data
//! directory and a random loopback port, its log in a file, stopped by signals.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use corrections_gateway::partner::Partner;

const BIN: &str = env!("CARGO_BIN_EXE_corrections-gateway");

pub struct Served {
    pub child: Child,
    /// Holds the process's log (and the data directory, unless it was given).
    pub dir: tempfile::TempDir,
    /// The data directory (`--dir`).
    pub data: PathBuf,
    /// The plain-HTTP address.
    pub addr: String,
    /// The mutual-TLS address, when `--tls-listen` was given.
    pub tls_addr: Option<String>,
    pub log: PathBuf,
}

impl Served {
    /// `serve --listen 127.0.0.1:0 --dir … ARGS` with `env` (and no inherited
    /// `RUST_LOG` or `GATEWAY_LOG_FORMAT`); returns once it listens.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Served {
        Self::start_with_data(None, args, env)
    }

    /// The same on a data directory that exists already (a restart, a
    /// directory a [`super::TestGateway`] prepared).
    pub fn start_on(data: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Served {
        Self::start_with_data(Some(data.to_path_buf()), args, env)
    }

    fn start_with_data(data: Option<PathBuf>, args: &[&str], env: &[(&str, &str)]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let data = data.unwrap_or_else(|| dir.path().join("data"));
        let log = dir.path().join("gateway.log");
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--dir"])
            .arg(&data)
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("GATEWAY_LOG_FORMAT")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let tls = args.contains(&"--tls-listen");
        let (addr, tls_addr) = addresses(&mut child, tls);
        Served {
            child,
            dir,
            data,
            addr,
            tls_addr,
            log,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pki(&self) -> PathBuf {
        self.data.join("pki")
    }

    /// A partner of `agency` signing with its ECDSA P-256 dev key.
    pub fn partner(&self, agency: &str) -> Partner {
        let dir = self.pki().join(agency);
        Partner::from_files(
            &self.base_url(),
            &dir.join("ecdsa-p256.key.pem"),
            &dir.join("ecdsa-p256.crt.pem"),
        )
        .unwrap()
    }

    /// Sends a signal (`TERM`, `INT`, `HUP`) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (at most `limit`).
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < limit, "the gateway did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The addresses `serve` prints once it listens (plain, then TLS if asked).
fn addresses(child: &mut Child, tls: bool) -> (String, Option<String>) {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            for marker in ["listening on http://", "mutual TLS: https://"] {
                if let Some(rest) = line.split(marker).nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
            }
        }
    });
    let wait = Duration::from_secs(120);
    let plain = rx.recv_timeout(wait).expect("serve prints its address");
    let tls = tls.then(|| rx.recv_timeout(wait).expect("serve prints its TLS address"));
    (plain, tls)
}
