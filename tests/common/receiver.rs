//! A real webhook receiver on loopback: a small HTTP/1.1 server whose behaviour a test switches
//! (refuse connections, answer a status, accept), recording every request it answered 2xx.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Behaviour {
    /// Not listening: connections are refused.
    Down,
    /// Answer every request with this status.
    Status(u16),
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub struct Receiver {
    pub addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    pub requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    /// Binds a free loopback port and starts with `behaviour`.
    pub fn start(behaviour: Behaviour) -> Receiver {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let r = Receiver {
            addr,
            behaviour: Arc::new(Mutex::new(behaviour)),
            requests: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (b, reqs, stop) = (Arc::clone(&r.behaviour), Arc::clone(&r.requests), Arc::clone(&r.stop));
        std::thread::spawn(move || serve(addr, b, reqs, stop));
        r
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/vigil", self.addr)
    }

    /// Requests answered 2xx.
    pub fn delivered(&self) -> Vec<Request> {
        self.requests.lock().unwrap().iter().filter(|r| (200..300).contains(&r.status)).cloned().collect()
    }

    pub fn all(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Listens while the behaviour is not `Down`; closes the socket (so connects are refused) while it is.
fn serve(addr: SocketAddr, behaviour: Arc<Mutex<Behaviour>>, reqs: Arc<Mutex<Vec<Request>>>, stop: Arc<AtomicBool>) {
    let mut listener: Option<TcpListener> = None;
    while !stop.load(Ordering::Acquire) {
        let b = *behaviour.lock().unwrap();
        match (b, &listener) {
            (Behaviour::Down, Some(_)) => listener = None,
            (Behaviour::Status(_), None) => {
                let l = TcpListener::bind(addr).expect("rebind the receiver's port");
                l.set_nonblocking(true).unwrap();
                listener = Some(l);
            }
            _ => {}
        }
        let Some(l) = &listener else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        match l.accept() {
            Ok((stream, _)) => {
                let (b, reqs) = (Arc::clone(&behaviour), Arc::clone(&reqs));
                std::thread::spawn(move || handle(stream, b, reqs));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Serves requests on one (keep-alive) connection.
fn handle(stream: TcpStream, behaviour: Arc<Mutex<Behaviour>>, reqs: Arc<Mutex<Vec<Request>>>) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let status = match *behaviour.lock().unwrap() {
            Behaviour::Status(s) => s,
            Behaviour::Down => 503,
        };
        reqs.lock().unwrap().push(Request { headers, body, status });
        let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
