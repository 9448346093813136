//! `vigil run` with `[kafka]`, against a real Kafka-compatible broker (scripts/test.sh starts one and
//! sets `VIGIL_TEST_KAFKA_BROKERS`; without it these tests say so and pass, unless
//! `VIGIL_TEST_REQUIRE_KAFKA=1`, which the test script and CI set).
//!
//! The reference for every test is `vigil replay`: a partition's engine sees that partition's events
//! in offset order, so replaying each partition's events gives exactly the alerts the live detector
//! must emit — after a crash and a hand-over too, with the same ids.

mod common;

use common::live::{wait_for, Detector};
use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

fn brokers() -> Option<String> {
    match std::env::var("VIGIL_TEST_KAFKA_BROKERS") {
        Ok(b) if !b.is_empty() => Some(b),
        _ => {
            assert!(
                std::env::var("VIGIL_TEST_REQUIRE_KAFKA").as_deref() != Ok("1"),
                "VIGIL_TEST_REQUIRE_KAFKA=1 but VIGIL_TEST_KAFKA_BROKERS is not set"
            );
            eprintln!("skipped: no broker (run scripts/test.sh, which starts one)");
            None
        }
    }
}

/// Topic names unique to one test run.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

fn create_topics(brokers: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin client");
    let new: Vec<NewTopic> = topics.iter().map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1))).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let results = rt
        .block_on(admin.create_topics(&new, &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))))
        .expect("create topics");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
    }
}

fn producer(brokers: &str) -> BaseProducer {
    ClientConfig::new().set("bootstrap.servers", brokers).set("linger.ms", "5").create().expect("producer")
}

/// Sends `(partition, key, payload)` messages and waits for their acknowledgement.
fn produce(p: &BaseProducer, topic: &str, msgs: &[(i32, Option<String>, String)]) {
    for (partition, key, payload) in msgs {
        let mut rec = BaseRecord::to(topic).payload(payload.as_str()).partition(*partition);
        if let Some(k) = key {
            rec = rec.key(k.as_str());
        }
        let mut rec = rec;
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    p.poll(Duration::from_millis(10));
                    rec = back;
                }
            }
        }
    }
    p.flush(Duration::from_secs(30)).expect("produce");
}

/// Every message of `topic` so far (all partitions, from the beginning), as text.
struct TopicReader {
    consumer: BaseConsumer,
    pub messages: Vec<String>,
}

impl TopicReader {
    fn new(brokers: &str, topic: &str, partitions: i32) -> TopicReader {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", unique("reader"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
        }
        consumer.assign(&tpl).expect("assign");
        TopicReader { consumer, messages: Vec::new() }
    }

    /// Reads what arrived within `wait`.
    fn drain(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while let Some(m) = self.consumer.poll(deadline.saturating_duration_since(Instant::now())) {
            let m = m.expect("consume");
            self.messages.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            if Instant::now() >= deadline {
                break;
            }
        }
    }

    fn ids(&self) -> Vec<String> {
        self.messages
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .map(|a| a["id"].as_str().expect("alert id").to_string())
            .collect()
    }
}

/// The alerts `vigil replay` raises on `events` (one partition's events, in order): id -> agent.
fn replay_alerts(dir: &Path, name: &str, events: &[String]) -> BTreeMap<String, String> {
    let path = dir.join(name);
    std::fs::write(&path, events.iter().map(|e| format!("{e}\n")).collect::<String>()).unwrap();
    let alerts = dir.join(format!("{name}.alerts"));
    assert_exit(&run_in(dir, &["replay", s(&path), "--alerts", s(&alerts)]), 0);
    json_lines(&alerts)
        .iter()
        .map(|a| (a["id"].as_str().unwrap().to_string(), a["agent_id"].as_str().unwrap().to_string()))
        .collect()
}

fn replay_ids(dir: &Path, name: &str, events: &[String]) -> BTreeSet<String> {
    replay_alerts(dir, name, events).into_keys().collect()
}

fn agent_of(line: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap();
    v["agent_id"].as_str().unwrap().to_string()
}

fn config(dir: &Path, brokers: &str, group: &str, topics: &BTreeMap<&str, String>, state_dir: bool) {
    let mut text = format!(
        "[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{group}\"\ntopics = [\"{}\"]\nalerts_topic = \"{}\"\n\
         dead_letter_topic = \"{}\"\ncheckpoint_interval_secs = 1\n",
        topics["events"], topics["alerts"], topics["dlq"]
    );
    if let Some(t) = topics.get("state") {
        text.push_str(&format!("state_topic = \"{t}\"\n"));
    }
    // Quick group joins. The rebalance timeout (max.poll.interval.ms) is how long a rebalance may wait
    // for a member that has not rejoined — a killed one never will — so keep it short too.
    text.push_str(
        "[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n\
         \"max.poll.interval.ms\" = \"15000\"\n",
    );
    if let Ok(debug) = std::env::var("VIGIL_TEST_KAFKA_DEBUG") {
        text.push_str(&format!("\"debug\" = \"{debug}\"\n")); // librdkafka's own debug contexts
    }
    if state_dir {
        text.push_str("[state]\ndir = \"state\"\n");
    }
    std::fs::write(dir.join("vigil.toml"), text).unwrap();
}

#[test]
fn events_become_alerts_and_malformed_messages_dead_letters() {
    let Some(brokers) = brokers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let topics: BTreeMap<&str, String> =
        [("events", unique("ev")), ("alerts", unique("alerts")), ("dlq", unique("dlq"))].into_iter().collect();
    create_topics(&brokers, &[(&topics["events"], 1), (&topics["alerts"], 1), (&topics["dlq"], 1)]);
    let ev = simulate(
        dir.path(),
        "fleet.jsonl",
        &["--agents", "30", "--duration", "2h", "--seed", "5", "--attacks", "all"],
        false,
    );
    let events = lines(&ev);
    let reference = replay_ids(dir.path(), "p0.jsonl", &events);
    assert!(reference.len() >= 3, "{reference:?}");

    let mut msgs = keyed_by_agent(&events, 1);
    msgs.push((0, Some("x".into()), "not json".into()));
    msgs.push((0, Some("someone-else".into()), events[0].clone()));
    msgs.push((0, Some("x".into()), "{\"ts\":1,\"kind\":\"tool_call\"}".into()));
    produce(&producer(&brokers), &topics["events"], &msgs);

    config(dir.path(), &brokers, &unique("g"), &topics, true);
    let mut d = Detector::start(dir.path(), &["--config", "vigil.toml"]);
    // Ingest over HTTP is off in Kafka mode; health and metrics stay.
    assert_eq!(d.post("/v1/events", events[0].as_bytes(), &[]).0, 404);
    let mut alerts = TopicReader::new(&brokers, &topics["alerts"], 1);
    wait_for(120, "every reference alert on the alerts topic", || {
        alerts.drain(Duration::from_millis(500));
        (alerts.ids().len() >= reference.len()).then_some(())
    });
    let ids: BTreeSet<String> = alerts.ids().into_iter().collect();
    assert_eq!(ids, reference);
    assert_eq!(alerts.ids().len(), reference.len(), "no duplicates without a failure");
    let first: Value = serde_json::from_str(&alerts.messages[0]).unwrap();
    assert!(first["emitted_at"].is_string(), "{first}");

    let mut dlq = TopicReader::new(&brokers, &topics["dlq"], 1);
    wait_for(30, "three dead letters", || {
        dlq.drain(Duration::from_millis(300));
        (dlq.messages.len() >= 3).then_some(())
    });
    let reasons: Vec<String> = dlq
        .messages
        .iter()
        .map(|m| serde_json::from_str::<Value>(m).unwrap()["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasons, ["invalid_json", "key_mismatch", "missing_field"]);
    assert_eq!(serde_json::from_str::<Value>(&dlq.messages[0]).unwrap()["position"], events.len() as u64);

    wait_for(30, "a checkpoint", || d.metric("vigil_checkpoints_total{outcome=\"ok\"}").filter(|&n| n >= 1.0));
    assert_eq!(d.metric("vigil_partitions_assigned"), Some(1.0));
    assert_eq!(d.terminate(Duration::from_secs(10)), Some(0), "{}", d.log_text());
    assert!(dir.path().join("state").read_dir().unwrap().count() >= 1, "a checkpoint file in the state directory");
}

/// Partition of an agent in this test (the producer chooses it explicitly).
fn partition_of(agent: &str, partitions: i32) -> i32 {
    (agent.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % partitions as u32) as i32
}

/// `(partition, key, payload)` for each event: keyed by its agent, on the agent's partition.
fn keyed_by_agent(events: &[String], partitions: i32) -> Vec<(i32, Option<String>, String)> {
    events
        .iter()
        .map(|e| {
            let a = agent_of(e);
            (partition_of(&a, partitions), Some(a), e.clone())
        })
        .collect()
}

#[test]
fn a_killed_instance_s_partitions_continue_elsewhere_from_their_checkpoints() {
    let Some(brokers) = brokers() else { return };
    const PARTITIONS: i32 = 4;
    let dir = tempfile::tempdir().unwrap();
    let topics: BTreeMap<&str, String> =
        [("events", unique("ev")), ("alerts", unique("alerts")), ("dlq", unique("dlq")), ("state", unique("state"))]
            .into_iter()
            .collect();
    create_topics(
        &brokers,
        &[(&topics["events"], PARTITIONS), (&topics["alerts"], 1), (&topics["dlq"], 1), (&topics["state"], 1)],
    );
    let ev = simulate(
        dir.path(),
        "fleet.jsonl",
        &["--agents", "60", "--duration", "3h", "--seed", "9", "--attacks", "all"],
        false,
    );
    let events = lines(&ev);
    let msgs = keyed_by_agent(&events, PARTITIONS);
    let mut reference_agents = BTreeMap::new();
    for p in 0..PARTITIONS {
        let part: Vec<String> = msgs.iter().filter(|m| m.0 == p).map(|m| m.2.clone()).collect();
        reference_agents.extend(replay_alerts(dir.path(), &format!("p{p}.jsonl"), &part));
    }
    let reference: BTreeSet<String> = reference_agents.keys().cloned().collect();
    assert!(reference.len() >= 4, "{reference:?}");

    // Two instances of one group, each with its own working directory; state in the topic.
    let group = unique("g");
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&dir_a, &dir_b] {
        std::fs::create_dir(d).unwrap();
        config(d, &brokers, &group, &topics, false);
    }
    // B joins first and so leads the group: tansu (the test broker) does not elect a new leader when
    // the leader dies, unlike Kafka, so the instance killed here must be a follower.
    let b = Detector::start(&dir_b, &["--config", "vigil.toml"]);
    wait_for(60, "B to own every partition", || {
        (b.metric("vigil_partitions_assigned")? == PARTITIONS as f64).then_some(())
    });
    let mut a = Detector::start(&dir_a, &["--config", "vigil.toml"]);
    wait_for(90, "both instances to own partitions", || {
        let (pa, pb) = (a.metric("vigil_partitions_assigned")?, b.metric("vigil_partitions_assigned")?);
        (pa >= 1.0 && pb >= 1.0 && pa + pb == PARTITIONS as f64).then_some(())
    });

    // Produce in steps so A is killed mid-stream, after it has checkpointed some of its partitions.
    let prod = producer(&brokers);
    let steps = 10;
    let per = msgs.len().div_ceil(steps);
    let mut alerts = TopicReader::new(&brokers, &topics["alerts"], 1);
    for (i, chunk) in msgs.chunks(per).enumerate() {
        produce(&prod, &topics["events"], chunk);
        std::thread::sleep(Duration::from_millis(700));
        if i == steps / 2 {
            wait_for(30, "a checkpoint by A", || {
                a.metric("vigil_checkpoints_total{outcome=\"ok\"}").filter(|&n| n >= 2.0)
            });
            a.kill9();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        alerts.drain(Duration::from_millis(500));
        let seen: BTreeSet<String> = alerts.ids().into_iter().collect();
        if reference.is_subset(&seen) {
            break;
        }
        if Instant::now() > deadline {
            let missing: Vec<&String> = reference.difference(&seen).collect();
            // Full logs go to files: the tail alone rarely shows why.
            let keep = std::env::temp_dir().join(format!("vigil-kafka-failure-{}", std::process::id()));
            std::fs::create_dir_all(&keep).unwrap();
            std::fs::write(keep.join("a.log"), a.log_text()).unwrap();
            std::fs::write(keep.join("b.log"), b.log_text()).unwrap();
            let parts: Vec<i32> = missing.iter().map(|id| partition_of(&reference_agents[*id], PARTITIONS)).collect();
            panic!(
                "{} of {} expected alerts missing after 240 s: {missing:?} (partitions {parts:?}); logs in {}",
                missing.len(),
                reference.len(),
                keep.display()
            );
        }
    }
    alerts.drain(Duration::from_secs(2));
    let ids = alerts.ids();
    let seen: BTreeSet<String> = ids.iter().cloned().collect();
    let unexpected: Vec<&String> = seen.difference(&reference).collect();
    assert!(
        unexpected.is_empty(),
        "alerts no replay raises (a cold start would): {unexpected:?}\nB:\n{}",
        b.log_text()
    );
    assert_eq!(b.metric("vigil_partitions_assigned"), Some(PARTITIONS as f64));
    let log = b.log_text();
    assert!(log.contains("Partition restored from its checkpoint"), "B took over without state:\n{log}");
    eprintln!(
        "{} alerts expected, {} delivered ({} duplicates, all with the same id)",
        reference.len(),
        ids.len(),
        ids.len() - seen.len()
    );
}

#[test]
fn replay_reads_a_topic_through_the_same_engine() {
    let Some(brokers) = brokers() else { return };
    const PARTITIONS: i32 = 2;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let topic = unique("rp");
    create_topics(&brokers, &[(&topic, PARTITIONS)]);
    let ev =
        simulate(d, "fleet.jsonl", &["--agents", "30", "--duration", "2h", "--seed", "5", "--attacks", "all"], false);
    let events = lines(&ev);
    let msgs = keyed_by_agent(&events, PARTITIONS);
    produce(&producer(&brokers), &topic, &msgs);
    // The reference: the partitions as two files, merged by `ts` as replay merges several inputs.
    let mut inputs = Vec::new();
    for p in 0..PARTITIONS {
        let path = d.join(format!("part{p}.jsonl"));
        let part: String = msgs.iter().filter(|m| m.0 == p).map(|m| format!("{}\n", m.2)).collect();
        std::fs::write(&path, part).unwrap();
        inputs.push(path);
    }
    let mut args = vec!["replay", "--alerts", "files.alerts", "--report", "files.json"];
    args.extend(inputs.iter().map(|p| s(p)));
    assert_exit(&run_in(d, &args), 0);
    // The live configuration serves: its brokers and properties are used, the topic is the option's.
    let cfg = format!("[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"g\"\ntopics = [\"other\"]\n");
    std::fs::write(d.join("vigil.toml"), cfg).unwrap();
    let out = run_in(
        d,
        &[
            "replay",
            "--config",
            "vigil.toml",
            "--kafka-topic",
            &topic,
            "--alerts",
            "topic.alerts",
            "--report",
            "r.json",
        ],
    );
    assert_exit(&out, 0);
    let ids = |f: &str| -> Vec<String> {
        json_lines(&d.join(f)).iter().map(|a| a["id"].as_str().unwrap().to_string()).collect()
    };
    assert!(!ids("files.alerts").is_empty());
    assert_eq!(ids("topic.alerts"), ids("files.alerts"), "the same alerts, in the same order");
    let (from_topic, from_files) = (read_json(&d.join("r.json")), read_json(&d.join("files.json")));
    for k in ["events", "invalid_events", "duplicate_events", "late_events", "agents", "alerts"] {
        assert_eq!(from_topic[k], from_files[k], "{k}");
    }
    let total = ["events", "duplicate_events"].iter().map(|k| from_topic[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(total, events.len() as u64, "every message read");

    // A time range: only events with `ts` inside it are replayed.
    let first = ts_ms(&serde_json::from_str::<Value>(&events[0]).unwrap()["ts"]);
    let to = first + 30 * 60 * 1000;
    let inside = events.iter().filter(|e| ts_ms(&serde_json::from_str::<Value>(e).unwrap()["ts"]) <= to).count();
    let to_arg = to.to_string();
    let out = run_in(
        d,
        &[
            "replay",
            "--config",
            "vigil.toml",
            "--kafka-topic",
            &topic,
            "--to",
            &to_arg,
            "--alerts",
            "/dev/null",
            "--report",
            "r2.json",
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(read_json(&d.join("r2.json"))["events"], inside as u64);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains(&format!("{} events outside --from/--to left out", events.len() - inside)));
}
