//! Running `vigil run` as a child process: its address, its log lines, plain HTTP on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `vigil run`; killed when dropped.
pub struct Detector {
    pub child: Child,
    pub addr: SocketAddr,
    /// stderr lines so far (logs).
    pub log: Arc<Mutex<Vec<String>>>,
    /// stdout lines so far (alerts, when no other sink is configured).
    pub stdout: Arc<Mutex<Vec<String>>>,
}

fn collect(stream: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    });
}

impl Detector {
    /// Starts `vigil --log-level info run --listen 127.0.0.1:0 ARGS` in `dir` and waits until it listens.
    pub fn start(dir: &Path, args: &[&str]) -> Detector {
        let mut cmd = super::vigil();
        cmd.current_dir(dir)
            .args(["--log-level", &log_level(), "run", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start vigil run");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        collect(child.stderr.take().unwrap(), Arc::clone(&log));
        collect(child.stdout.take().unwrap(), Arc::clone(&stdout));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let addr = log.lock().unwrap().iter().find_map(|l| {
                l.strip_prefix("vigil: listening on http://").and_then(|a| a.trim().parse::<SocketAddr>().ok())
            });
            if let Some(addr) = addr {
                return Detector { child, addr, log, stdout };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("vigil run exited with {status} before listening:\n{}", log.lock().unwrap().join("\n"));
            }
            assert!(Instant::now() < deadline, "vigil run did not listen within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// `GET path` → (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http(self.addr, "GET", path, &[], &[])
    }

    /// `POST path` with `body` → (status, body).
    pub fn post(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, String) {
        http(self.addr, "POST", path, body, headers)
    }

    /// The value of an unlabelled metric, or of the first series whose line starts with `series`.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Sends SIGTERM and waits (up to `within`) for the exit status code.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to checkpoint or flush.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Detector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 request on loopback (no client crate needed): returns status and body.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to vigil");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading the whole body; a broken pipe then is expected.
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// Polls `f` every 100 ms until it returns `Some` or `secs` pass.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `info`, or what `VIGIL_TEST_LOG_LEVEL` says (e.g. `info,librdkafka=debug` to see the Kafka client).
fn log_level() -> String {
    std::env::var("VIGIL_TEST_LOG_LEVEL").unwrap_or_else(|_| "info".into())
}
