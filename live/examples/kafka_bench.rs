//! Kafka path figures for `benches/README.md`, against a real broker:
//!
//! 1. the raw consume rate of a topic (a bare librdkafka consumer reading every message): the ceiling;
//! 2. `vigil run` consuming the same messages (decode, engine, alerts topic, checkpoints): events/s;
//! 3. event-to-alert latency at a steady rate: produce time of the event that raised an alert (its
//!    offset is in the alert's evidence) to the alert's `emitted_at`.
//!
//! `cargo run --release -p vigil-live --example kafka_bench -- BROKERS VIGIL_BINARY EVENTS.jsonl [RATE]`
//! (`FETCH_WAIT_MS=N` sets vigil's `fetch.wait.max.ms`; `BENCH_KAFKA_PROPS=key=value,key=value` adds
//! further librdkafka properties to vigil's `[kafka.properties]`.)

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn create(brokers: &str, topics: &[&str]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin");
    let new: Vec<NewTopic> = topics.iter().map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1))).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for r in rt.block_on(admin.create_topics(&new, &AdminOptions::new())).expect("create topics") {
        r.expect("topic created");
    }
}

fn agent_of(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).expect("event JSON");
    v["agent_id"].as_str().expect("agent_id").to_string()
}

/// Produces `lines` (key agent_id); with `rate` > 0 at that many per second. Returns send times (unix ms).
fn produce(brokers: &str, topic: &str, lines: &[String], rate: f64) -> Vec<i64> {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let start = Instant::now();
    let mut sent = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        if rate > 0.0 {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let key = agent_of(l);
        let mut rec = BaseRecord::to(topic).key(key.as_str()).payload(l.as_str());
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    p.poll(Duration::from_millis(1));
                    rec = back;
                }
            }
        }
        sent.push(unix_ms());
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(60)).expect("flush");
    sent
}

/// Reads `n` messages of `topic` from the beginning; messages per second from first to last.
fn raw_consume(brokers: &str, topic: &str, n: usize) -> f64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("raw-{}", unix_ms()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", std::env::var("FETCH_WAIT_MS").unwrap_or_else(|_| "500".into()))
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    c.assign(&tpl).unwrap();
    let (mut got, mut first) = (0, None);
    while got < n {
        if let Some(m) = c.poll(Duration::from_secs(10)) {
            let m = m.expect("message");
            std::hint::black_box(m.payload());
            first.get_or_insert_with(Instant::now);
            got += 1;
        }
    }
    n as f64 / first.unwrap().elapsed().as_secs_f64()
}

fn metric(port: u16, name: &str) -> Option<f64> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))?.rsplit(' ').next()?.parse().ok()
}

fn start_vigil(vigil: &str, brokers: &str, topic: &str, alerts: &str, dir: &std::path::Path) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = format!(
        "[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"bench-{}\"\ntopics = [\"{topic}\"]\nalerts_topic = \"{alerts}\"\n\
         checkpoint_interval_secs = 5\n[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n{}",
        unix_ms(),
        std::env::var("FETCH_WAIT_MS").map(|ms| format!("\"fetch.wait.max.ms\" = \"{ms}\"\n")).unwrap_or_default()
            + &std::env::var("BENCH_KAFKA_PROPS")
                .map(|p| {
                    p.split(',')
                        .filter(|kv| !kv.is_empty())
                        .map(|kv| format!("\"{}\"\n", kv.replacen('=', "\" = \"", 1)))
                        .collect::<String>()
                })
                .unwrap_or_default()
    );
    std::fs::write(dir.join("bench.toml"), cfg).unwrap();
    let child = Command::new(vigil)
        .current_dir(dir)
        .args(["--log-level", "warn", "run", "--listen", &format!("127.0.0.1:{port}"), "--config", "bench.toml"])
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("BENCH_VIGIL_STDERR").is_some() { Stdio::inherit() } else { Stdio::null() })
        .spawn()
        .expect("start vigil");
    (child, port)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, vigil, events, ..] = &args[..] else {
        eprintln!("usage: kafka_bench BROKERS VIGIL_BINARY EVENTS.jsonl [RATE]");
        std::process::exit(2);
    };
    // vigil runs in a scratch directory: resolve a relative path first.
    let vigil = &std::fs::canonicalize(vigil).expect("the vigil binary").display().to_string();
    let rate: f64 = args.get(4).map(|r| r.parse().expect("RATE")).unwrap_or(20_000.0);
    let lines: Vec<String> = std::fs::read_to_string(events).expect("events").lines().map(str::to_string).collect();
    let n = lines.len();
    let dir = tempfile::tempdir().unwrap();
    let tag = unix_ms();

    // 1 and 2: the same topic, read raw and by vigil.
    let (topic, alerts) = (format!("bench-ev-{tag}"), format!("bench-alerts-{tag}"));
    create(brokers, &[&topic, &alerts]);
    produce(brokers, &topic, &lines, 0.0);
    let raw: Vec<f64> = (0..3).map(|_| raw_consume(brokers, &topic, n)).collect();
    let (mut child, port) = start_vigil(vigil, brokers, &topic, &alerts, dir.path());
    let mut first = None;
    loop {
        let done = metric(port, "vigil_events_processed_total").unwrap_or(0.0);
        if done > 0.0 {
            first.get_or_insert((Instant::now(), done));
        }
        if done as usize >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (t0, d0) = first.unwrap();
    let vigil_rate = (n as f64 - d0) / t0.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();

    // 3: latency at a steady rate, vigil already consuming.
    let (topic2, alerts2) = (format!("bench-ev2-{tag}"), format!("bench-alerts2-{tag}"));
    create(brokers, &[&topic2, &alerts2]);
    let (mut child, port) = start_vigil(vigil, brokers, &topic2, &alerts2, dir.path());
    while metric(port, "vigil_partitions_assigned").unwrap_or(0.0) < 1.0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let by_id: std::collections::HashMap<String, usize> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some((v["id"].as_str()?.to_string(), i))
        })
        .collect();
    let sent = produce(brokers, &topic2, &lines, rate);
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers.as_str())
        .set("group.id", format!("lat-{tag}"))
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&alerts2, 0, Offset::Beginning).unwrap();
    c.assign(&tpl).unwrap();
    let mut lat = Vec::new();
    while let Some(m) = c.poll(Duration::from_secs(5)) {
        let m = m.expect("alert");
        let a: serde_json::Value = serde_json::from_slice(m.payload().unwrap_or_default()).expect("alert JSON");
        let emitted = a["emitted_at"].as_str().and_then(vigil_detector::time::parse_rfc3339_ms).expect("emitted_at");
        // The triggering event is named by its producer `id`, else by its offset; operator alerts
        // (detector "vigil") carry no evidence and are not timed.
        let ev = &a["evidence"][0];
        let index = match (ev["id"].as_str(), ev["position"].as_u64()) {
            (Some(id), _) => by_id.get(id).copied(),
            (None, Some(offset)) => Some(offset as usize),
            _ => None,
        };
        if let Some(i) = index {
            lat.push((emitted - sent[i]) as f64);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| lat.get(((lat.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    let mut raw_sorted = raw.clone();
    raw_sorted.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "events": n,
            "raw_consume_per_s": raw_sorted[1].round(),
            "vigil_per_s": vigil_rate.round(),
            "vigil_share_of_raw": (vigil_rate / raw_sorted[1] * 1000.0).round() / 1000.0,
            "latency_rate_per_s": rate,
            "alerts": lat.len(),
            "event_to_alert_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": lat.last()},
        })
    );
}
