//! One simulated agent instance: its habits (drawn once from its class), its session state machine,
//! and a small buffer of rendered events waiting for their turn in the global time order.
//!
//! Generation is lazy and step-wise. The agent has two event streams — its normal work and, from a
//! planned time on, its attacks — each with the time of its next step (`next_normal`,
//! `AttackRun::next`). A step renders a handful of events, all at or after that time, into `buf`; the
//! agent may emit the earliest buffered event only once no stream can still produce anything earlier.
//! That keeps every agent's output sorted while the streams overlap freely, and it bounds memory by
//! the events of a step or two.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::rc::Rc;

use rand::{Rng, SeedableRng};

use crate::attack::{AttackRun, Mimicry};
use crate::classes::{Class, Tk};
use crate::dist::{
    between, chance, exp, geometric, lerp, lognormal, lognormal_u, mix64, pick, pick_str, weighted, SimRng,
};
use crate::json::{self, Obj};
use crate::text::{self, Lang, MAX_PAYLOAD};
use crate::time::{self, MS_PER_DAY, MS_PER_HOUR};

/// Label index of an event that belongs to no attack.
pub(crate) const NO_LABEL: u32 = u32::MAX;
/// "Never": the next-step time of a stream that has ended.
pub(crate) const NEVER: i64 = i64::MAX;
/// Session-rate multiplier while an agent is in a (benign) burst.
const BURST: f64 = 4.0;
/// Probability that an agent goes idle for a few hours after a session.
pub(crate) const IDLE_P: f64 = 0.02;
/// Median idle stretch, hours.
pub(crate) const IDLE_MEDIAN_H: f64 = 2.0;

/// A rendered event waiting in an agent's buffer. Ordered by time, then by creation.
pub(crate) struct Pending {
    pub ts: i64,
    pub seq: u64,
    pub label: u32,
    pub line: String,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.seq) == (other.ts, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ts, self.seq).cmp(&(other.ts, other.seq))
    }
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Denied,
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

/// A side effect of a tool call (or a bare action seen by the platform).
pub(crate) enum EffKind {
    Net { dest: String, method: &'static str, bytes_out: u64, bytes_in: u64, payload: Option<String> },
    File { path: String, op: &'static str, bytes: u64, payload: Option<String> },
    Proc { cmd: String },
    Auth { op: &'static str, scope: String, principal: String },
    Metric { name: &'static str, value: f64 },
}

/// A side effect with its outcome and label.
pub(crate) struct Effect {
    pub kind: EffKind,
    pub outcome: Outcome,
    pub privileged: bool,
    pub label: u32,
}

impl Effect {
    pub(crate) fn new(kind: EffKind) -> Self {
        Effect { kind, outcome: Outcome::Ok, privileged: false, label: NO_LABEL }
    }

    pub(crate) fn outcome(mut self, o: Outcome) -> Self {
        self.outcome = o;
        self
    }

    pub(crate) fn privileged(mut self) -> Self {
        self.privileged = true;
        self
    }
}

pub(crate) fn net(
    dest: impl Into<String>,
    method: &'static str,
    out: u64,
    inn: u64,
    payload: Option<String>,
) -> Effect {
    Effect::new(EffKind::Net { dest: dest.into(), method, bytes_out: out, bytes_in: inn, payload })
}

pub(crate) fn file(path: String, op: &'static str, bytes: u64, payload: Option<String>) -> Effect {
    Effect::new(EffKind::File { path, op, bytes, payload })
}

pub(crate) fn process(cmd: impl Into<String>) -> Effect {
    Effect::new(EffKind::Proc { cmd: cmd.into() })
}

pub(crate) fn auth(op: &'static str, scope: impl Into<String>, principal: impl Into<String>) -> Effect {
    Effect::new(EffKind::Auth { op, scope: scope.into(), principal: principal.into() })
}

/// A tool invocation: the call, its side effects and its result.
pub(crate) struct Action {
    pub tool: &'static str,
    /// The arguments, already rendered as a JSON object.
    pub args: String,
    pub effects: Vec<Effect>,
    pub result: String,
    pub result_bytes: u64,
    pub outcome: Outcome,
    pub latency_ms: i64,
    pub call_label: u32,
    pub result_label: u32,
}

impl Action {
    pub(crate) fn new(tool: &'static str, latency_ms: i64) -> Self {
        Action {
            tool,
            args: String::from("{}"),
            effects: Vec::new(),
            result: String::new(),
            result_bytes: 0,
            outcome: Outcome::Ok,
            latency_ms: latency_ms.max(1),
            call_label: NO_LABEL,
            result_label: NO_LABEL,
        }
    }

    /// Marks every event of the action as part of attack `label`.
    pub(crate) fn label_all(&mut self, label: u32) {
        self.call_label = label;
        self.result_label = label;
        for e in &mut self.effects {
            e.label = label;
        }
    }

    /// Sets the result payload and a plausible byte count for it.
    fn result(&mut self, payload: String, scale: f64) {
        self.result_bytes = ((payload.len() as f64) * scale.max(1.0)) as u64;
        self.result = payload;
    }
}

/// An event being rendered. Starts with the common fields; `Agent::push` closes it.
pub(crate) struct Ev {
    buf: String,
    ts: i64,
    seq: u64,
    label: u32,
    has_attrs: bool,
}

impl Ev {
    /// Writer for more members of the event object.
    pub(crate) fn o(&mut self) -> Obj<'_> {
        Obj::resume(&mut self.buf)
    }

    /// Writes `attrs`.
    pub(crate) fn attrs(&mut self, f: impl FnOnce(&mut Obj<'_>)) {
        self.has_attrs = true;
        self.o().obj("attrs", f);
    }

    /// Writes `outcome` unless it is the default.
    pub(crate) fn outcome(&mut self, o: Outcome) {
        if o != Outcome::Ok {
            self.o().str("outcome", o.as_str());
        }
    }
}

/// The agent's phase in its normal work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not yet started: the first event is its start-up token request.
    Startup,
    /// Between sessions.
    Offline,
    /// A user (or, for batch classes, the next batch) is about to arrive.
    UserTurn,
    /// Working through tool steps.
    Steps,
}

/// The conversation / job in progress.
pub(crate) struct Session {
    pub id: Rc<str>,
    turns_left: u32,
    steps_left: u32,
    last_tool: Option<usize>,
    llm_calls: u32,
    cost: f64,
    step_no: u32,
    focus: usize,
    cost_every: u32,
}

/// Per-instance flavour: what this agent works on.
pub(crate) struct Persona {
    /// Repos / datasets / services / topics / product lines / projects.
    pub items: Vec<&'static str>,
    /// Kubernetes namespaces (devops) or buckets (pipeline).
    pub spaces: Vec<&'static str>,
    /// Language of each repo (code-assistant).
    pub langs: Vec<Lang>,
    /// Mailbox owner / operator.
    pub owner: String,
    /// Colleagues and partners (email-assistant).
    pub contacts: Vec<String>,
    pub region: &'static str,
    pub account: u64,
    pub pod: String,
}

static REPOS: &[(&str, Lang)] = &[
    ("billing-service", Lang::Rust),
    ("vigil", Lang::Rust),
    ("web-frontend", Lang::TypeScript),
    ("data-tools", Lang::Python),
    ("auth-gateway", Lang::Rust),
    ("mobile-app", Lang::TypeScript),
    ("infra-scripts", Lang::Python),
    ("search-api", Lang::Python),
    ("ml-notebooks", Lang::Python),
    ("payments-sdk", Lang::TypeScript),
];
static DATASETS: &[&str] =
    &["orders", "clickstream", "payments", "inventory", "users", "events", "shipments", "sessions", "refunds"];
static SERVICES: &[&str] =
    &["api", "web", "worker", "billing", "auth", "search", "gateway", "scheduler", "ingest", "notifier"];
static NAMESPACES: &[&str] = &["prod", "staging", "default", "monitoring", "payments"];
static TOPICS: &[&str] = &[
    "battery-chemistry",
    "llm-evaluation",
    "carbon-markets",
    "protein-folding",
    "urban-heat",
    "chip-supply-chains",
    "microplastics",
    "quantum-error-correction",
    "monetary-policy",
    "coral-reefs",
    "wind-power",
    "antibiotic-resistance",
];
static PRODUCTS: &[&str] = &["starter", "pro", "business", "enterprise", "hardware", "accessories"];
static PROJECTS: &[&str] =
    &["q1-planning", "vendor-renewal", "hiring", "offsite", "board-deck", "customer-escalations"];
static REGIONS: &[&str] = &["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1"];
static PARTNER_DOMAINS: &[&str] = &["acme-partners.com", "globex.io", "initech.co.uk", "umbrella-legal.com"];

/// Web hosts a research agent reads.
static RESEARCH_HOSTS: &[&str] = &[
    "en.wikipedia.org",
    "arxiv.org",
    "www.nature.com",
    "scholar.archive.org",
    "pubmed.ncbi.nlm.nih.gov",
    "www.reuters.com",
    "www.bbc.co.uk",
    "github.com",
    "www.sciencedirect.com",
    "data.worldbank.org",
    "www.who.int",
    "ourworldindata.org",
    "www.theguardian.com",
    "medium.com",
    "www.nytimes.com",
    "www.economist.com",
    "www.semanticscholar.org",
    "openreview.net",
    "paperswithcode.com",
    "huggingface.co",
    "www.jstor.org",
    "www.statista.com",
    "www.imf.org",
    "www.oecd.org",
    "www.census.gov",
    "www.nasa.gov",
    "www.noaa.gov",
    "www.cdc.gov",
    "europa.eu",
    "www.un.org",
    "stackexchange.com",
    "www.wired.com",
    "arstechnica.com",
    "www.technologyreview.com",
    "www.ft.com",
    "www.bloomberg.com",
    "www.pewresearch.org",
    "www.brookings.edu",
    "www.rand.org",
    "plato.stanford.edu",
    "www.britannica.com",
    "dl.acm.org",
    "ieeexplore.ieee.org",
    "link.springer.com",
    "www.biorxiv.org",
    "www.medrxiv.org",
    "www.iea.org",
    "www.ipcc.ch",
    "www.science.org",
    "www.cell.com",
];
static TLDS: &[&str] = &["com", "org", "net", "io", "edu", "co.uk", "de"];
static DOC_HOSTS: &[&str] = &[
    "docs.rs",
    "api.github.com",
    "crates.io",
    "pypi.org",
    "registry.npmjs.org",
    "stackoverflow.com",
    "developer.mozilla.org",
    "raw.githubusercontent.com",
    "docs.python.org",
];

/// Hosts a class talks to in normal work (used by attacks that want to blend in).
pub(crate) fn usual_hosts(class: &Class) -> &'static [&'static str] {
    match class.name {
        "support-bot" => &["kb.internal:443", "crm.internal:443", "orders.internal:8080", "api.zendesk.com:443"],
        "code-assistant" => &["api.github.com:443", "docs.rs:443", "pypi.org:443", "registry.npmjs.org:443"],
        "data-pipeline" => &["s3.us-east-1.amazonaws.com:443", "warehouse.internal:5432", "kafka-1.internal:9092"],
        "research-agent" => &["en.wikipedia.org:443", "arxiv.org:443", "api.search.brave.com:443"],
        "devops-agent" => &["loki.internal:3100", "argocd.internal:443", "ec2.us-east-1.amazonaws.com:443"],
        _ => &["graph.microsoft.com:443"],
    }
}

/// Home directory of the agent's service user.
pub(crate) const HOME: &str = "/home/agent";

/// One simulated agent.
pub(crate) struct Agent {
    pub idx: u32,
    pub id: String,
    pub class: &'static Class,
    pub rng: SimRng,
    pub tz_ms: i64,
    pub rate_mult: f64,
    tool_w: Vec<f64>,
    model: usize,
    pub persona: Persona,
    /// When the agent joins the fleet (its start-up event comes at `next_normal`).
    pub join_ms: i64,
    /// When it leaves (NEVER for most).
    pub leave_ms: i64,
    /// End of the run in duration mode, else NEVER.
    pub end_ms: i64,
    id_key: u64,
    /// Per-run mask over the id fields (the same for every agent, so ids stay distinct).
    id_mask: u64,
    seq: u64,
    calls: u64,
    sessions: u64,
    recent_noid: VecDeque<i64>,
    pub next_normal: i64,
    phase: Phase,
    pub session: Option<Session>,
    burst_until: i64,
    /// A confined attack keeps the current session open until then.
    pub hold_until: i64,
    /// Planned attacks on this agent, in time order; the front one is running or next.
    pub attacks: VecDeque<AttackRun>,
    /// Active mimicry (its payloads are being doctored).
    pub mimicry: Option<Mimicry>,
    buf: BinaryHeap<Reverse<Pending>>,
}

impl Agent {
    /// Draws a new agent of `class`; `number` is its 1-based number within the class.
    pub(crate) fn new(idx: u32, class: &'static Class, number: usize, seed: u64) -> Agent {
        let mut rng = SimRng::seed_from_u64(seed ^ 0x5EED_A6E7_0D15_CAFE);
        rng.set_stream(u64::from(idx));
        let id = format!("{}-{:03}", class.name, number);
        let tz_ms = (pick(&mut rng, class.tz_hours) * MS_PER_HOUR as f64) as i64;
        let rate_mult = lognormal(&mut rng, 1.0, 0.45).clamp(0.25, 4.0);
        let tool_w = class.tools.iter().map(|t| t.weight * lognormal(&mut rng, 1.0, 0.3)).collect();
        let model = weighted(&mut rng, class.models.iter().map(|m| m.1));
        let persona = Persona::draw(class, &mut rng);
        Agent {
            idx,
            id,
            class,
            rng,
            tz_ms,
            rate_mult,
            tool_w,
            model,
            persona,
            join_ms: 0,
            leave_ms: NEVER,
            end_ms: NEVER,
            id_key: mix64(seed.rotate_left(17) ^ u64::from(idx)),
            id_mask: mix64(seed ^ 0x1D5_1D5),
            seq: 0,
            calls: 0,
            sessions: 0,
            recent_noid: VecDeque::with_capacity(16),
            next_normal: 0,
            phase: Phase::Startup,
            session: None,
            burst_until: 0,
            hold_until: 0,
            attacks: VecDeque::new(),
            mimicry: None,
            buf: BinaryHeap::new(),
        }
    }

    /// Lower bound of the time of anything this agent will still emit (NEVER when done).
    pub(crate) fn key(&self) -> i64 {
        let front = self.buf.peek().map_or(NEVER, |r| r.0.ts);
        front.min(self.next_normal).min(self.next_attack())
    }

    fn next_attack(&self) -> i64 {
        self.attacks.front().map_or(NEVER, |a| a.next)
    }

    /// Either emits the earliest buffered event (when nothing earlier can still appear) or runs one
    /// generation step of whichever stream is due first.
    pub(crate) fn poll(&mut self, slots: &mut [crate::LabelSlot]) -> Option<Pending> {
        let front = self.buf.peek().map_or(NEVER, |r| r.0.ts);
        let nn = self.next_normal;
        let na = self.next_attack();
        if front != NEVER && front <= nn && front <= na {
            return self.buf.pop().map(|r| r.0);
        }
        if na < nn {
            self.attack_step(slots);
        } else if nn != NEVER {
            self.normal_step();
        }
        None
    }

    /// Current session id, if any.
    pub(crate) fn sid(&self) -> Option<Rc<str>> {
        self.session.as_ref().map(|s| s.id.clone())
    }

    /// Local hour of day (fractional) at `t`.
    pub(crate) fn local_hour(&self, t: i64) -> f64 {
        (t + self.tz_ms).rem_euclid(MS_PER_DAY) as f64 / MS_PER_HOUR as f64
    }

    /// Activity multiplier of the daily rhythm at local hour `h`.
    pub(crate) fn rhythm_at_hour(class: &Class, h: f64) -> f64 {
        let i = (h.floor() as usize) % 24;
        lerp(class.rhythm[i], class.rhythm[(i + 1) % 24], h - h.floor())
    }

    // ----- rendering --------------------------------------------------------------------------

    /// Starts an event with the common fields.
    pub(crate) fn ev(&mut self, ts: i64, kind: &str, label: u32, session: Option<&str>) -> Ev {
        let mut buf = String::with_capacity(320);
        buf.push_str("{\"ts\":");
        if self.class.ts_int {
            json::push_i64(&mut buf, ts);
        } else {
            buf.push('"');
            time::push_rfc3339(&mut buf, ts);
            buf.push('"');
        }
        let mut o = Obj::resume(&mut buf);
        o.str("agent_id", &self.id).str("agent", self.class.name);
        if let Some(s) = session {
            o.str("session_id", s);
        }
        o.str("kind", kind);
        self.seq += 1;
        // Producers omit the id on some metric events; such lines stay unique because no two of an
        // agent's id-less events share a timestamp.
        let id_less = kind == "metric" && !self.recent_noid.contains(&ts) && chance(&mut self.rng, 0.5);
        if id_less {
            if self.recent_noid.len() == 16 {
                self.recent_noid.pop_front();
            }
            self.recent_noid.push_back(ts);
        } else {
            let h = mix64(self.id_key ^ self.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            // (agent index, sequence number) is encoded in full, so ids never repeat; the mask only
            // keeps them from looking sequential.
            let idx = u64::from(self.idx) ^ (self.id_mask & 0x0fff_ffff);
            let _ = write!(
                buf,
                ",\"id\":\"{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}\"",
                h >> 32,
                (idx >> 12) & 0xffff,
                idx & 0xfff,
                0x8000 | (h & 0x3fff),
                (self.seq ^ self.id_mask.rotate_left(28)) & 0xffff_ffff_ffff
            );
        }
        Ev { buf, ts, seq: self.seq, label, has_attrs: false }
    }

    /// Closes the event and buffers it.
    pub(crate) fn push(&mut self, mut ev: Ev) {
        if !ev.has_attrs && chance(&mut self.rng, 0.12) {
            let trace = text::hex_string(&mut self.rng, 16);
            let region = self.persona.region;
            let pod = if chance(&mut self.rng, 0.5) { Some(self.persona.pod.as_str()) } else { None };
            ev.attrs(|a| {
                a.str("trace_id", &trace).str("region", region);
                if let Some(p) = pod {
                    a.str("pod", p);
                }
            });
        }
        ev.buf.push_str("}\n");
        self.buf.push(Reverse(Pending { ts: ev.ts, seq: ev.seq, label: ev.label, line: ev.buf }));
    }

    pub(crate) fn new_call_id(&mut self) -> String {
        self.calls += 1;
        format!("call_{:012x}{:x}x{:x}", mix64(self.id_key ^ self.calls) & 0xffff_ffff_ffff, self.idx, self.calls)
    }

    pub(crate) fn principal(&self) -> String {
        format!("svc-{}", self.class.name)
    }

    /// A metric event.
    pub(crate) fn metric(&mut self, t: i64, sid: Option<&str>, label: u32, name: &str, value: f64) {
        let mut e = self.ev(t, "metric", label, sid);
        e.o().obj("metric", |m| {
            m.str("name", name).f64("value", value);
        });
        self.push(e);
    }

    /// An `llm_call`; returns its latency. `scale` multiplies the token counts (runaway loops).
    pub(crate) fn llm_call(&mut self, t: i64, sid: Option<&str>, label: u32, reply: bool, scale: f64) -> i64 {
        let c = self.class;
        let m =
            if chance(&mut self.rng, 0.9) { self.model } else { weighted(&mut self.rng, c.models.iter().map(|m| m.1)) };
        let model = c.models[m].0;
        let step_no = self.session.as_ref().map_or(0, |s| s.step_no);
        let growth = 1.0 + 0.06 * f64::from(step_no.min(40));
        let tin = (lognormal(&mut self.rng, c.tok_in.0, c.tok_in.1) * growth * scale).clamp(1.0, 400_000.0) as u64;
        let out_median = c.tok_out.0 * if reply { 1.4 } else { 1.0 };
        let tout = (lognormal(&mut self.rng, out_median, c.tok_out.1) * scale).clamp(1.0, 32_000.0) as u64;
        let per_token = if model.contains("mini") || model.contains("haiku") || model.contains("8b") {
            6.0
        } else if model.contains("opus") || model.starts_with("o3") {
            28.0
        } else {
            14.0
        };
        let latency =
            ((250.0 + tout as f64 * per_token + tin as f64 / 60.0) * lognormal(&mut self.rng, 1.0, 0.25)) as i64;
        let failed = chance(&mut self.rng, 0.004);
        let latency = if failed { latency / 10 + 30 } else { latency };
        let mut e = self.ev(t, "llm_call", label, sid);
        e.o()
            .str("model", model)
            .obj("tokens", |o| {
                o.u64("input", tin).u64("output", if failed { 0 } else { tout });
            })
            .u64("latency_ms", latency as u64);
        if failed {
            e.outcome(Outcome::Error);
            let retry = between(&mut self.rng, 500, 20_000) as u64;
            e.attrs(|a| {
                a.str("error", "rate_limited").u64("retry_after_ms", retry);
            });
        }
        self.push(e);
        let price = if per_token > 20.0 {
            0.015
        } else if per_token > 10.0 {
            0.003
        } else {
            0.0003
        };
        let call_cost = (tin as f64 + 4.0 * tout as f64) / 1000.0 * price;
        let mut emit_cost = None;
        if let Some(s) = self.session.as_mut() {
            s.llm_calls += 1;
            s.cost += call_cost;
            s.step_no += 1;
            if s.llm_calls % s.cost_every == 0 {
                emit_cost = Some(s.cost);
            }
        }
        if let Some(cost) = emit_cost {
            self.metric(t + latency + 1, sid, label, "cost_usd", (cost * 1e6).round() / 1e6);
        }
        latency
    }

    /// Emits a tool call, its side effects and its result; returns the result's time.
    pub(crate) fn emit_action(&mut self, t1: i64, a: &Action, sid: Option<&str>) -> i64 {
        let call_id = self.new_call_id();
        let mut e = self.ev(t1, "tool_call", a.call_label, sid);
        e.o().str("tool", a.tool).raw("args", &a.args).str("call_id", &call_id);
        self.push(e);
        let mut te = t1;
        for eff in &a.effects {
            te += between(&mut self.rng, 2, 40);
            self.emit_effect(te, eff, sid);
        }
        let tr = (t1 + a.latency_ms).max(te + 1);
        let mut e = self.ev(tr, "tool_result", a.result_label, sid);
        e.o()
            .str("tool", a.tool)
            .str("call_id", &call_id)
            .u64("bytes", a.result_bytes)
            .str("payload", text::clip(&a.result, MAX_PAYLOAD));
        e.outcome(a.outcome);
        self.push(e);
        tr
    }

    /// Emits one side effect as its own event.
    pub(crate) fn emit_effect(&mut self, t: i64, eff: &Effect, sid: Option<&str>) {
        let kind = match eff.kind {
            EffKind::Net { .. } => "net",
            EffKind::File { .. } => "file",
            EffKind::Proc { .. } => "process",
            EffKind::Auth { .. } => "auth",
            EffKind::Metric { .. } => "metric",
        };
        let mut e = self.ev(t, kind, eff.label, sid);
        match &eff.kind {
            EffKind::Net { dest, method, bytes_out, bytes_in, payload } => {
                let mut o = e.o();
                o.str("dest", dest).str("method", method).u64("bytes_out", *bytes_out).u64("bytes_in", *bytes_in);
                if let Some(p) = payload {
                    o.str("payload", text::clip(p, MAX_PAYLOAD));
                }
            }
            EffKind::File { path, op, bytes, payload } => {
                let mut o = e.o();
                o.str("path", path).str("op", op).u64("bytes", *bytes);
                if let Some(p) = payload {
                    o.str("payload", text::clip(p, MAX_PAYLOAD));
                }
            }
            EffKind::Proc { cmd } => {
                e.o().str("cmd", cmd).strs("argv", cmd.split_whitespace());
            }
            EffKind::Auth { op, scope, principal } => {
                e.o().str("op", op).str("scope", scope).str("principal", principal);
            }
            EffKind::Metric { name, value } => {
                e.o().obj("metric", |m| {
                    m.str("name", name).f64("value", *value);
                });
            }
        }
        if eff.privileged {
            e.o().bool("privileged", true);
        }
        if matches!(eff.kind, EffKind::Auth { .. }) {
            e.o().str("outcome", eff.outcome.as_str());
        } else {
            e.outcome(eff.outcome);
        }
        self.push(e);
    }

    // ----- normal work ------------------------------------------------------------------------

    /// One step of normal work at `next_normal`.
    pub(crate) fn normal_step(&mut self) {
        let t = self.next_normal;
        if t >= self.leave_ms || t >= self.end_ms {
            self.next_normal = NEVER;
            return;
        }
        let next = match self.phase {
            Phase::Startup => self.startup(t),
            Phase::Offline => self.open_session(t),
            Phase::UserTurn => self.user_turn(t),
            Phase::Steps => self.work_step(t),
        };
        self.next_normal = if next == NEVER { NEVER } else { next.max(t + 1) };
    }

    fn startup(&mut self, t: i64) -> i64 {
        let mut e = self.ev(t, "auth", NO_LABEL, None);
        let principal = self.principal();
        let pod = self.persona.pod.clone();
        e.o()
            .str("op", "token_request")
            .str("scope", self.class.scope)
            .str("principal", &principal)
            .str("outcome", "ok");
        e.attrs(|a| {
            a.str("reason", "startup").str("pod", &pod);
        });
        self.push(e);
        self.phase = Phase::Offline;
        self.next_session_start(t + 1000)
    }

    /// Next session start after `from`: a Poisson process thinned by the daily rhythm, with idle
    /// stretches and bursts.
    fn next_session_start(&mut self, from: i64) -> i64 {
        let c = self.class;
        let mut t = from as f64;
        if chance(&mut self.rng, IDLE_P) {
            t += lognormal(&mut self.rng, IDLE_MEDIAN_H, 0.7) * MS_PER_HOUR as f64;
        }
        let base = c.sessions_per_hour * self.rate_mult / MS_PER_HOUR as f64;
        let bursting = from < self.burst_until;
        let max = base * c.rhythm_max() * if bursting { BURST } else { 1.0 };
        let end = self.end_ms.min(self.leave_ms) as f64;
        for _ in 0..1_000_000 {
            t += exp(&mut self.rng, 1.0 / max);
            if t >= end || t > 9.0e15 {
                return self.end_ms.min(self.leave_ms);
            }
            let ti = t as i64;
            let burst = if ti < self.burst_until { BURST } else { 1.0 };
            let lam = base * Self::rhythm_at_hour(c, self.local_hour(ti)) * burst;
            if self.rng.gen::<f64>() * max < lam {
                break;
            }
        }
        t as i64
    }

    /// Opens a session at `t`; returns the time of the next normal step.
    fn open_session(&mut self, t: i64) -> i64 {
        let c = self.class;
        self.sessions += 1;
        let id: Rc<str> = format!(
            "{}-{:08x}-{:x}-{:x}",
            c.session_prefix,
            mix64(self.id_key.rotate_left(7) ^ self.sessions) as u32,
            self.idx,
            self.sessions
        )
        .into();
        let turns = 1 + (lognormal(&mut self.rng, c.turns.0, c.turns.1).floor() as u32).min(120);
        if chance(&mut self.rng, 0.03) {
            self.burst_until = t + (lognormal(&mut self.rng, 25.0, 0.5) * 60_000.0) as i64;
        }
        let focus = self.rng.gen_range(0..self.persona.items.len().max(1));
        let cost_every = self.rng.gen_range(3..9);
        self.session = Some(Session {
            id: id.clone(),
            turns_left: turns,
            steps_left: 0,
            last_tool: None,
            llm_calls: 0,
            cost: 0.0,
            step_no: 0,
            focus,
            cost_every,
        });
        let mut tt = t;
        if chance(&mut self.rng, c.token_request_p) {
            let principal = self.principal();
            let eff = auth("token_request", c.scope, principal).outcome(if chance(&mut self.rng, 0.003) {
                Outcome::Error
            } else {
                Outcome::Ok
            });
            self.emit_effect(tt, &eff, Some(&id));
            tt += between(&mut self.rng, 30, 400);
        }
        if c.interactive {
            self.phase = Phase::UserTurn;
            tt
        } else {
            let content = self.system_text();
            let mut e = self.ev(tt, "message", NO_LABEL, Some(&id));
            e.o().str("role", "system").str("content", text::clip(&content, MAX_PAYLOAD));
            self.push(e);
            self.phase = Phase::UserTurn;
            tt + between(&mut self.rng, 200, 2000)
        }
    }

    fn user_turn(&mut self, t: i64) -> i64 {
        let c = self.class;
        let sid = self.sid();
        let steps = if c.interactive {
            let content = self.user_text();
            let mut e = self.ev(t, "message", NO_LABEL, sid.as_deref());
            e.o().str("role", "user").str("content", text::clip(&content, MAX_PAYLOAD));
            self.push(e);
            geometric(&mut self.rng, c.steps_mean)
        } else {
            let depth = lognormal(&mut self.rng, 1200.0, 0.9).round();
            self.metric(t, sid.as_deref(), NO_LABEL, "queue_depth", depth);
            1 + geometric(&mut self.rng, c.steps_mean - 1.0)
        };
        if let Some(s) = self.session.as_mut() {
            s.steps_left = steps.min(60);
        }
        self.phase = Phase::Steps;
        t + between(&mut self.rng, 150, 2500)
    }

    fn work_step(&mut self, t: i64) -> i64 {
        let steps_left = self.session.as_ref().map_or(0, |s| s.steps_left);
        if steps_left == 0 {
            return self.reply(t);
        }
        if let Some(s) = self.session.as_mut() {
            s.steps_left -= 1;
        }
        self.tool_step(t)
    }

    fn bursting(&self, t: i64) -> bool {
        t < self.burst_until
    }

    fn tool_step(&mut self, t: i64) -> i64 {
        let sid = self.sid();
        let lat = self.llm_call(t, sid.as_deref(), NO_LABEL, false, 1.0);
        let ti = self.choose_tool();
        let kind = self.class.tools[ti].kind;
        let t1 = t + lat + between(&mut self.rng, 5, 120);
        let mut action = self.plan_tool(kind, t1);
        // Devops work now and then needs root, legitimately.
        if kind == Tk::OpsShell && chance(&mut self.rng, 0.1) {
            self.legit_sudo(&mut action);
        }
        self.apply_mimicry(t1, &mut action);
        let end = self.emit_action(t1, &action, sid.as_deref());
        if let Some(s) = self.session.as_mut() {
            s.last_tool = Some(ti);
        }
        let pause = between(&mut self.rng, 40, 900);
        end + if self.bursting(t) { pause / 3 } else { pause }
    }

    fn reply(&mut self, t: i64) -> i64 {
        let c = self.class;
        let sid = self.sid();
        let end = if c.interactive {
            let lat = self.llm_call(t, sid.as_deref(), NO_LABEL, true, 1.0);
            let t2 = t + lat + between(&mut self.rng, 5, 60);
            let content = self.reply_text();
            let mut e = self.ev(t2, "message", NO_LABEL, sid.as_deref());
            e.o().str("role", "assistant").str("content", text::clip(&content, MAX_PAYLOAD));
            self.push(e);
            t2
        } else {
            let rows = lognormal(&mut self.rng, 50_000.0, 1.0).round();
            self.metric(t, sid.as_deref(), NO_LABEL, "rows_processed", rows);
            t
        };
        let more = {
            let s = self.session.as_mut();
            match s {
                Some(s) => {
                    s.turns_left = s.turns_left.saturating_sub(1);
                    if s.turns_left == 0 && end < self.hold_until {
                        s.turns_left = 1;
                    }
                    s.turns_left > 0
                }
                None => false,
            }
        };
        if more {
            self.phase = Phase::UserTurn;
            let think = lognormal(&mut self.rng, c.think_s.0, c.think_s.1) * 1000.0;
            let think = if self.bursting(t) { think * 0.3 } else { think };
            end + (think as i64).clamp(800, 6 * MS_PER_HOUR)
        } else {
            self.close_session(end)
        }
    }

    fn close_session(&mut self, t: i64) -> i64 {
        if let Some(s) = self.session.take() {
            if chance(&mut self.rng, 0.5) && s.cost > 0.0 {
                let at = t + between(&mut self.rng, 1, 50);
                self.metric(at, Some(&s.id), NO_LABEL, "session_cost_usd", (s.cost * 1e6).round() / 1e6);
            }
        }
        self.phase = Phase::Offline;
        self.next_session_start(t + 100)
    }

    /// Makes sure a session is open at `t` (opening one now if needed) and returns its id.
    pub(crate) fn force_session(&mut self, t: i64) -> Rc<str> {
        if let Some(s) = &self.session {
            return s.id.clone();
        }
        let next = self.open_session(t);
        self.next_normal = next.max(t + 1);
        self.session.as_ref().map(|s| s.id.clone()).expect("open_session always opens a session")
    }

    fn choose_tool(&mut self) -> usize {
        let c = self.class;
        let last = self.session.as_ref().and_then(|s| s.last_tool).map(|i| c.tools[i].kind);
        let mut w = [0f64; 12];
        let n = c.tools.len().min(12);
        for (j, wj) in w.iter_mut().enumerate().take(n) {
            let mut boost = 0.0;
            if let Some(from) = last {
                for (f, to, b) in c.links {
                    if *f == from && *to == c.tools[j].kind {
                        boost += b;
                    }
                }
            }
            *wj = self.tool_w[j] * (1.0 + boost);
        }
        weighted(&mut self.rng, w[..n].iter().copied())
    }

    fn legit_sudo(&mut self, a: &mut Action) {
        let svc = *pick(&mut self.rng, &self.persona.items);
        let cmd = format!("sudo systemctl restart {svc}");
        let denied = chance(&mut self.rng, 0.03);
        let principal = self.principal();
        let mut effects = vec![auth("sudo", "root", principal).privileged().outcome(if denied {
            Outcome::Denied
        } else {
            Outcome::Ok
        })];
        if !denied {
            effects.push(process(cmd.clone()).privileged());
        } else {
            a.outcome = Outcome::Denied;
            a.result = "sudo: a password is required".to_string();
            a.result_bytes = a.result.len() as u64;
        }
        a.args = json::object(|o| {
            o.str("cmd", &cmd).u64("timeout_s", 60);
        });
        a.effects = effects;
    }

    fn apply_mimicry(&mut self, t: i64, a: &mut Action) {
        let Some(m) = self.mimicry.as_mut() else {
            return;
        };
        if t > m.end || (m.hits > 0 && !chance(&mut m.rng, m.p)) {
            return;
        }
        m.hits += 1;
        let label = m.label;
        // Stolen data rides along in the arguments ...
        let n = if m.loud { between(&mut m.rng, 300, 1200) } else { between(&mut m.rng, 60, 220) } as usize;
        let mut blob = String::with_capacity(n * 4 / 3 + 4);
        text::base64_random(&mut m.rng, &mut blob, n);
        let field = *pick(&mut m.rng, &["ctx", "ref", "state", "trace", "cursor", "etag_hint"]);
        if a.args.ends_with('}') {
            a.args.pop();
            if a.args.len() > 1 {
                a.args.push(',');
            }
            json::push_str(&mut a.args, field);
            a.args.push(':');
            json::push_str(&mut a.args, &blob);
            a.args.push('}');
            a.call_label = label;
        }
        // ... and in any request body, same size as a normal one.
        for e in &mut a.effects {
            if let EffKind::Net { payload, bytes_out, method, .. } = &mut e.kind {
                if *method == "GET" {
                    continue;
                }
                let len = payload.as_ref().map_or_else(|| between(&mut m.rng, 120, 600) as usize, |p| p.len().max(80));
                let mut p = String::with_capacity(len + 4);
                text::base64_random(&mut m.rng, &mut p, len * 3 / 4);
                text::truncate(&mut p, MAX_PAYLOAD);
                *bytes_out = (*bytes_out).max(p.len() as u64 + 200);
                *payload = Some(p);
                e.label = label;
            }
        }
    }

    // ----- content ----------------------------------------------------------------------------

    fn user_text(&mut self) -> String {
        let c = self.class;
        let r = &mut self.rng;
        let len = lognormal(r, c.user_len.0, c.user_len.1).clamp(12.0, 1500.0) as usize;
        let mut s = String::with_capacity(len + 64);
        let focus = self.session.as_ref().map_or(0, |x| x.focus);
        let item = self.persona.items.get(focus).copied().unwrap_or("general");
        match c.name {
            "support-bot" => {
                let lead = *pick(
                    r,
                    &[
                        "Hi, ",
                        "Hello, my order #",
                        "I was charged twice for ",
                        "Can you help me with ",
                        "Why is my ",
                        "please ignore my previous message, ",
                    ],
                );
                s.push_str(lead);
                if lead.ends_with('#') {
                    json::push_u64(&mut s, r.gen_range(100_000..999_999));
                    s.push(' ');
                }
            }
            "code-assistant" => {
                s.push_str(pick_str(r, &["Can you fix ", "Refactor ", "Add a test for ", "Why does ", "Implement "]));
                text::ident(r, &mut s);
                s.push_str(" in ");
                s.push_str(item);
                s.push_str("? ");
            }
            "research-agent" => {
                s.push_str(pick_str(
                    r,
                    &["Find recent work on ", "Summarise the evidence about ", "Compare sources on "],
                ));
                s.push_str(&item.replace('-', " "));
                s.push_str(". ");
            }
            "devops-agent" => {
                s.push_str(item);
                s.push_str(pick_str(
                    r,
                    &[" is slow in ", " keeps restarting in ", " needs a rollout in ", " alert firing in "],
                ));
                s.push_str(self.persona.spaces.first().copied().unwrap_or("prod"));
                s.push_str(". ");
            }
            _ => {
                s.push_str(pick_str(r, &["Draft a reply to ", "Find the thread from ", "Schedule a call with "]));
                s.push_str(&text::person_name(r));
                s.push_str(" about ");
                s.push_str(item);
                s.push_str(". ");
            }
        }
        text::prose(r, &mut s, len, c.words);
        s
    }

    fn reply_text(&mut self) -> String {
        let c = self.class;
        let r = &mut self.rng;
        let len = lognormal(r, c.reply_len.0, c.reply_len.1).clamp(20.0, MAX_PAYLOAD as f64) as usize;
        let mut s = String::with_capacity(len + 16);
        if c.name == "code-assistant" && chance(r, 0.5) {
            text::prose(r, &mut s, len / 3, c.words);
            s.push_str("\n\n```\n");
            let lang = *pick(r, &self.persona.langs);
            text::code(r, &mut s, len / 2, lang);
            s.push_str("```\n");
        } else {
            text::prose(r, &mut s, len, c.words);
        }
        text::truncate(&mut s, MAX_PAYLOAD);
        s
    }

    fn system_text(&mut self) -> String {
        let r = &mut self.rng;
        let ds = *pick(r, &self.persona.items);
        let mut s = format!(
            "Job {ds}_{} started: ingest {ds} from s3://{}/{ds}/, validate schema, classify free-text fields, load into analytics.{ds}. ",
            pick(r, &["hourly", "daily", "backfill", "incremental"]),
            pick(r, &self.persona.spaces),
        );
        text::prose(r, &mut s, 80, crate::text::PIPELINE_WORDS);
        s
    }

    // ----- tools --------------------------------------------------------------------------------

    /// Occasionally (benign novelty) a destination the class rarely uses.
    fn host(&mut self, usual: &str) -> String {
        if chance(&mut self.rng, 0.003) {
            return (*pick(&mut self.rng, self.class.rare_hosts)).to_string();
        }
        usual.to_string()
    }

    fn ln(&mut self, median: f64, sigma: f64) -> u64 {
        lognormal_u(&mut self.rng, median, sigma, 1)
    }

    fn err(&mut self, p_error: f64, p_denied: f64) -> Outcome {
        let x = self.rng.gen::<f64>();
        if x < p_error {
            Outcome::Error
        } else if x < p_error + p_denied {
            Outcome::Denied
        } else {
            Outcome::Ok
        }
    }

    fn prose(&mut self, median: f64, sigma: f64) -> String {
        let len = lognormal(&mut self.rng, median, sigma).clamp(16.0, MAX_PAYLOAD as f64) as usize;
        text::prose_string(&mut self.rng, len, self.class.words)
    }

    fn json_array(items: Vec<String>) -> String {
        let mut s = String::from("[");
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(it);
        }
        s.push(']');
        s
    }

    fn date(t: i64) -> String {
        let mut s = time::format_rfc3339(t);
        s.truncate(10);
        s
    }

    fn code_path(&mut self) -> (String, Lang) {
        let r = &mut self.rng;
        let focus = self.session.as_ref().map_or(0, |s| s.focus) % self.persona.items.len().max(1);
        let repo = self.persona.items[focus];
        let lang = self.persona.langs[focus];
        let dirs: &[&str] = match lang {
            Lang::Rust => &["src", "src/api", "src/db", "src/util", "tests", "benches", "crates/core/src", "examples"],
            Lang::Python => &["app", "app/api", "app/models", "app/services", "tests", "scripts", "notebooks"],
            Lang::TypeScript => &["src", "src/components", "src/hooks", "src/api", "src/pages", "test", "e2e"],
        };
        let mut p = String::with_capacity(64);
        if chance(r, 0.005) {
            p.push_str("/tmp/scratch-");
            json::push_u64(&mut p, r.gen_range(1..10_000));
        } else {
            p.push_str("/workspace/");
            p.push_str(repo);
            p.push('/');
            p.push_str(pick_str(r, dirs));
        }
        p.push('/');
        text::slug(r, &mut p, '_');
        p.push('.');
        p.push_str(lang.ext());
        (p, lang)
    }

    fn data_key(&mut self, t: i64, ext: &str) -> (String, &'static str) {
        let ds = *pick(&mut self.rng, &self.persona.items);
        let mut k = format!("{ds}/dt={}/part-{:05}.{ext}", Self::date(t), self.rng.gen_range(0..400));
        if chance(&mut self.rng, 0.004) {
            k = format!("quarantine/{k}");
        }
        (k, ds)
    }

    /// Arguments, side effects and result of one use of a tool.
    pub(crate) fn plan_tool(&mut self, kind: Tk, t: i64) -> Action {
        let c = self.class;
        let (name, median) =
            c.tools.iter().find(|d| d.kind == kind).map_or(("tool", 100.0), |d| (d.name, d.latency_ms));
        let latency = lognormal(&mut self.rng, median, 0.6) as i64;
        let mut a = Action::new(name, latency);
        match kind {
            Tk::KbSearch => {
                let q = self.prose(40.0, 0.4);
                let k = *pick(&mut self.rng, &[3u64, 5, 10]);
                a.args = json::object(|o| {
                    o.str("query", &q).u64("top_k", k);
                });
                let dest = self.host("kb.internal:443");
                let (o, i) = (self.ln(600.0, 0.3), self.ln(8000.0, 0.6));
                a.effects.push(net(dest, "GET", o, i, None));
                let hits = (0..k.min(4))
                    .map(|_| {
                        let title = self.prose(30.0, 0.3);
                        let snip = self.prose(140.0, 0.4);
                        let score = (self.rng.gen::<f64>() * 1000.0).round() / 1000.0;
                        json::object(|o| {
                            o.str("title", &title).str("snippet", &snip).f64("score", score);
                        })
                    })
                    .collect();
                a.result(Self::json_array(hits), 2.0);
            }
            Tk::CrmLookup => {
                let cust = format!("C-{}", self.rng.gen_range(1000..99_999));
                a.args = json::object(|o| {
                    o.str("customer", &cust);
                });
                let dest = self.host("crm.internal:443");
                let (o, i) = (self.ln(400.0, 0.3), self.ln(3000.0, 0.5));
                a.effects.push(net(dest, "GET", o, i, None));
                let name = text::person_name(&mut self.rng);
                let plan = *pick(&mut self.rng, PRODUCTS);
                let note = self.prose(80.0, 0.6);
                let since = Self::date(t - self.rng.gen_range(0..1000) * MS_PER_DAY);
                a.result(
                    json::object(|o| {
                        o.str("id", &cust)
                            .str("name", &name)
                            .str("plan", plan)
                            .str("since", &since)
                            .str("notes", &note);
                    }),
                    1.5,
                );
                a.outcome = self.err(0.01, 0.0);
            }
            Tk::OrderStatus => {
                let order = format!("#{}", self.rng.gen_range(100_000..999_999));
                a.args = json::object(|o| {
                    o.str("order_id", &order);
                });
                let dest = self.host("orders.internal:8080");
                let (o, i) = (self.ln(300.0, 0.3), self.ln(1500.0, 0.4));
                a.effects.push(net(dest, "GET", o, i, None));
                let status = *pick(&mut self.rng, &["shipped", "processing", "delivered", "delayed", "returned"]);
                let carrier = *pick(&mut self.rng, &["UPS", "DHL", "FedEx", "USPS", "La Poste"]);
                let eta = Self::date(t + self.rng.gen_range(0..7) * MS_PER_DAY);
                a.result(
                    json::object(|o| {
                        o.str("order_id", &order).str("status", status).str("carrier", carrier).str("eta", &eta);
                    }),
                    1.0,
                );
                a.outcome = self.err(0.015, 0.0);
            }
            Tk::TicketUpdate => {
                let ticket = format!("ZD-{}", self.rng.gen_range(100_000..999_999));
                let note = self.prose(160.0, 0.6);
                let status = *pick(&mut self.rng, &["pending", "solved", "open", "on-hold"]);
                a.args = json::object(|o| {
                    o.str("ticket", &ticket).str("status", status).str("note", &note);
                });
                let body = json::object(|o| {
                    o.obj("ticket", |t| {
                        t.str("status", status).obj("comment", |c| {
                            c.str("body", &note).bool("public", false);
                        });
                    });
                });
                let dest = self.host("api.zendesk.com:443");
                let out = body.len() as u64 + self.ln(400.0, 0.2);
                let i = self.ln(900.0, 0.3);
                a.effects.push(net(dest, "PUT", out, i, Some(body)));
                a.result(format!("{{\"ticket\":\"{ticket}\",\"updated\":true}}"), 1.0);
                a.outcome = self.err(0.01, 0.002);
            }
            Tk::RefundIssue => {
                let order = format!("#{}", self.rng.gen_range(100_000..999_999));
                let amount = (self.rng.gen_range(500..25_000) as f64) / 100.0;
                a.args = json::object(|o| {
                    o.str("order_id", &order).f64("amount_usd", amount);
                });
                let principal = self.principal();
                a.effects.push(auth("token_request", "payments:refund", principal));
                let body = json::object(|o| {
                    o.str("charge", &format!("ch_{}", text::hex_string(&mut self.rng, 8)))
                        .u64("amount", (amount * 100.0) as u64);
                });
                let out = body.len() as u64 + 350;
                a.effects.push(net("api.stripe.com:443", "POST", out, self.ln(1200.0, 0.2), Some(body)));
                let re = text::hex_string(&mut self.rng, 10);
                a.result(format!("{{\"refund\":\"re_{re}\",\"status\":\"succeeded\"}}"), 1.0);
                a.outcome = self.err(0.03, 0.02);
            }
            Tk::Handoff => {
                let reason = self.prose(60.0, 0.5);
                a.args = json::object(|o| {
                    o.str("queue", "tier2").str("reason", &reason);
                });
                let pos = self.rng.gen_range(1..40);
                a.result(format!("{{\"queued\":true,\"position\":{pos}}}"), 1.0);
            }
            Tk::TemplateRead => {
                let mut p = String::from("/srv/support/templates/");
                text::slug(&mut self.rng, &mut p, '-');
                p.push_str(".md");
                a.args = json::object(|o| {
                    o.str("path", &p);
                });
                let body = self.prose(300.0, 0.4);
                a.effects.push(file(p, "read", body.len() as u64, None));
                a.result(body, 1.0);
            }
            Tk::FsRead => {
                let (p, lang) = self.code_path();
                a.args = json::object(|o| {
                    o.str("path", &p);
                });
                let len = lognormal(&mut self.rng, 900.0, 0.7) as usize;
                let mut body = String::with_capacity(len);
                if chance(&mut self.rng, 0.05) {
                    // Lockfiles are full of integrity hashes: legitimately high entropy.
                    for _ in 0..4 {
                        body.push_str("\"integrity\": \"sha512-");
                        text::base64_random(&mut self.rng, &mut body, 64);
                        body.push_str("\",\n");
                    }
                } else {
                    text::code(&mut self.rng, &mut body, len, lang);
                }
                let o = self.err(0.03, 0.003);
                let bytes = if o == Outcome::Ok { body.len() as u64 * self.rng.gen_range(1..6) } else { 0 };
                a.effects.push(file(p, "read", bytes, None).outcome(o));
                if o == Outcome::Ok {
                    a.result(body, 3.0);
                } else {
                    a.result("ENOENT: no such file or directory".into(), 1.0);
                }
                a.outcome = o;
            }
            Tk::FsWrite => {
                let (p, lang) = self.code_path();
                let len = lognormal(&mut self.rng, 600.0, 0.7) as usize;
                let mut body = String::with_capacity(len);
                text::code(&mut self.rng, &mut body, len, lang);
                a.args = json::object(|o| {
                    o.str("path", &p).str("content", &body);
                });
                let n = body.len() as u64;
                a.effects.push(file(p, "write", n, None));
                a.result(format!("{{\"ok\":true,\"bytes\":{n}}}"), 1.0);
            }
            Tk::Grep => {
                let mut pat = String::new();
                text::ident(&mut self.rng, &mut pat);
                let (p, lang) = self.code_path();
                let dir = p.rsplit_once('/').map_or("/workspace", |x| x.0).to_string();
                a.args = json::object(|o| {
                    o.str("pattern", &pat).str("path", &dir);
                });
                a.effects.push(process(format!("rg -n {pat} {dir}")));
                let mut out = String::new();
                for _ in 0..self.rng.gen_range(0..8) {
                    out.push_str(&p);
                    out.push(':');
                    json::push_u64(&mut out, self.rng.gen_range(1..900));
                    out.push_str(": ");
                    text::code(&mut self.rng, &mut out, 60, lang);
                }
                a.result(out, 1.0);
            }
            Tk::Shell => {
                let focus = self.session.as_ref().map_or(0, |s| s.focus) % self.persona.items.len().max(1);
                let repo = self.persona.items[focus];
                let lang = self.persona.langs[focus];
                let cmd = match lang {
                    Lang::Rust => *pick(
                        &mut self.rng,
                        &[
                            "cargo test",
                            "cargo build",
                            "cargo clippy --all-targets",
                            "git status",
                            "git diff --stat",
                            "cargo fmt --check",
                        ],
                    ),
                    Lang::Python => *pick(
                        &mut self.rng,
                        &[
                            "pytest -q",
                            "python -m mypy app",
                            "ruff check .",
                            "git status",
                            "pip install -r requirements.txt",
                            "git log --oneline -5",
                        ],
                    ),
                    Lang::TypeScript => *pick(
                        &mut self.rng,
                        &[
                            "npm test",
                            "npm run lint",
                            "npx tsc --noEmit",
                            "git status",
                            "npm install",
                            "git diff --stat",
                        ],
                    ),
                };
                let cwd = format!("/workspace/{repo}");
                a.args = json::object(|o| {
                    o.str("cmd", cmd).str("cwd", &cwd);
                });
                a.effects.push(process(cmd));
                if cmd.contains("install") {
                    let host = if cmd.starts_with("pip") { "pypi.org:443" } else { "registry.npmjs.org:443" };
                    let i = self.ln(2_000_000.0, 1.0);
                    a.effects.push(net(host, "GET", self.ln(2000.0, 0.3), i, None));
                }
                let failed = chance(&mut self.rng, 0.12);
                let mut out = String::new();
                let len = lognormal(&mut self.rng, 500.0, 0.8) as usize;
                text::log_lines(&mut self.rng, &mut out, len, repo);
                if failed {
                    out.push_str("error: process exited with status 1");
                    a.outcome = Outcome::Error;
                }
                a.result(out, 4.0);
            }
            Tk::DocsFetch => {
                let usual = *pick(&mut self.rng, DOC_HOSTS);
                let host = self.host(usual);
                let mut url = format!("https://{}/", host.trim_end_matches(":443"));
                text::slug(&mut self.rng, &mut url, '/');
                a.args = json::object(|o| {
                    o.str("url", &url);
                });
                let dest = if host.contains(':') { host } else { format!("{host}:443") };
                let i = self.ln(40_000.0, 0.8);
                a.effects.push(net(dest, "GET", self.ln(700.0, 0.2), i, None));
                let mut body = self.prose(500.0, 0.6);
                body.push_str("\n\n");
                text::code(&mut self.rng, &mut body, 300, Lang::Rust);
                text::truncate(&mut body, MAX_PAYLOAD);
                a.result(body, 10.0);
                a.outcome = self.err(0.03, 0.0);
            }
            Tk::GitCommit => {
                let msg = self.prose(50.0, 0.4);
                a.args = json::object(|o| {
                    o.str("message", &msg).bool("push", true);
                });
                a.effects.push(process("git commit -am wip"));
                let o = self.ln(30_000.0, 0.8);
                a.effects.push(net("api.github.com:443", "POST", o, self.ln(800.0, 0.2), None));
                let h = text::hex_string(&mut self.rng, 4);
                a.result(format!("[main {h}] {msg}"), 1.0);
            }
            Tk::Screenshot => {
                let url =
                    format!("http://localhost:3000/{}", pick(&mut self.rng, &["", "login", "dashboard", "settings"]));
                a.args = json::object(|o| {
                    o.str("url", &url).u64("width", 1280);
                });
                a.effects.push(net("localhost:3000", "GET", 600, self.ln(30_000.0, 0.5), None));
                let mut img = String::from("data:image/png;base64,");
                let n = self.rng.gen_range(300..1400);
                text::base64_file(&mut self.rng, &mut img, b"\x89PNG\r\n\x1a\n", n);
                text::truncate(&mut img, MAX_PAYLOAD);
                a.result(img, 40.0);
            }
            Tk::QueuePoll => {
                let ds = *pick(&mut self.rng, &self.persona.items);
                let topic = format!("{ds}.raw");
                let max = *pick(&mut self.rng, &[100u64, 500, 1000]);
                a.args = json::object(|o| {
                    o.str("topic", &topic).u64("max_records", max);
                });
                let i = self.ln(200_000.0, 0.8);
                a.effects.push(net("kafka-1.internal:9092", "GET", 200, i, None));
                let got = self.rng.gen_range(0..=max);
                let lag = lognormal(&mut self.rng, 2000.0, 1.0).round();
                a.effects.push(Effect::new(EffKind::Metric { name: "consumer_lag", value: lag }));
                a.result(format!("{{\"topic\":\"{topic}\",\"records\":{got},\"lag\":{lag}}}"), 1.0);
            }
            Tk::S3Get => {
                let (key, ds) = self.data_key(t, "json.gz");
                let bucket = *pick(&mut self.rng, &self.persona.spaces);
                a.args = json::object(|o| {
                    o.str("bucket", bucket).str("key", &key);
                });
                let dest = self.host("s3.us-east-1.amazonaws.com:443");
                let i = self.ln(3_000_000.0, 1.0);
                a.effects.push(net(dest, "GET", 400, i, None));
                let rows = (0..3)
                    .map(|_| {
                        let id = self.rng.gen_range(1..10_000_000u64);
                        let comment = self.prose(60.0, 0.5);
                        let amount = (self.rng.gen_range(100..100_000) as f64) / 100.0;
                        json::object(|o| {
                            o.u64("id", id).str("dataset", ds).f64("amount", amount).str("comment", &comment);
                        })
                    })
                    .collect();
                a.result(Self::json_array(rows), 200.0);
                a.outcome = self.err(0.01, 0.002);
            }
            Tk::Transform => {
                let (key, ds) = self.data_key(t, "parquet");
                let input = format!("/data/staging/{key}");
                let output = format!("/data/out/{key}");
                a.args = json::object(|o| {
                    o.str("job", &format!("{ds}_clean")).str("input", &input).str("output", &output);
                });
                let b_in = self.ln(20_000_000.0, 0.8);
                let b_out = self.ln(15_000_000.0, 0.8);
                a.effects.push(file(input, "read", b_in, None));
                a.effects.push(file(output, "write", b_out, None));
                let rows_in = self.rng.gen_range(1000..500_000u64);
                let dropped = self.rng.gen_range(0..rows_in / 50 + 1);
                a.effects.push(Effect::new(EffKind::Metric { name: "rows_dropped", value: dropped as f64 }));
                a.result(
                    format!("{{\"rows_in\":{rows_in},\"rows_out\":{},\"dropped\":{dropped}}}", rows_in - dropped),
                    1.0,
                );
                a.outcome = self.err(0.02, 0.0);
            }
            Tk::DbLoad => {
                let ds = *pick(&mut self.rng, &self.persona.items);
                let rows = self.rng.gen_range(100..200_000u64);
                a.args = json::object(|o| {
                    o.str("table", &format!("analytics.{ds}")).u64("rows", rows).str("mode", "append");
                });
                let mut sql = format!("INSERT INTO analytics.{ds} (id, ts, amount, comment) VALUES ");
                for _ in 0..3 {
                    let _ = write!(
                        sql,
                        "({}, '{}', {}, '",
                        self.rng.gen_range(1..10_000_000),
                        Self::date(t),
                        self.rng.gen_range(1..9999)
                    );
                    text::prose(&mut self.rng, &mut sql, 30, crate::text::COMMON);
                    sql.push_str("'), ");
                }
                sql.push_str("...");
                let out = rows * 120;
                a.effects.push(net("warehouse.internal:5432", "POST", out, 300, Some(sql)));
                a.result(format!("{{\"inserted\":{rows}}}"), 1.0);
                a.outcome = self.err(0.02, 0.0);
            }
            Tk::S3Put => {
                let (key, _) = self.data_key(t, "json.gz");
                let bucket = *pick(&mut self.rng, &self.persona.spaces);
                let md5 = text::hex_string(&mut self.rng, 16);
                let sha = text::hex_string(&mut self.rng, 32);
                a.args = json::object(|o| {
                    o.str("bucket", bucket).str("key", &key).str("content_md5", &md5).str("checksum_sha256", &sha);
                });
                // A sampled body of a gzip upload: legitimately high entropy.
                let mut body = String::new();
                let n = self.rng.gen_range(200..900);
                text::base64_file(&mut self.rng, &mut body, b"\x1f\x8b\x08\x00", n);
                let out = self.ln(8_000_000.0, 1.0);
                let dest = self.host("s3.us-east-1.amazonaws.com:443");
                a.effects.push(net(dest, "PUT", out, 300, Some(body)));
                a.result(format!("{{\"etag\":\"{md5}\"}}"), 1.0);
                a.outcome = self.err(0.01, 0.0);
            }
            Tk::SchemaCheck => {
                let ds = *pick(&mut self.rng, &self.persona.items);
                a.args = json::object(|o| {
                    o.str("subject", &format!("{ds}-value"));
                });
                a.effects.push(net("schema-registry.internal:8081", "GET", 200, self.ln(3000.0, 0.3), None));
                a.result(
                    format!(
                        "{{\"subject\":\"{ds}-value\",\"version\":{},\"compatible\":true}}",
                        self.rng.gen_range(1..40)
                    ),
                    1.0,
                );
            }
            Tk::WebSearch => {
                let q = self.prose(50.0, 0.4);
                a.args = json::object(|o| {
                    o.str("q", &q).u64("count", 10);
                });
                let dest = if chance(&mut self.rng, 0.7) { "api.search.brave.com:443" } else { "serpapi.com:443" };
                let i = self.ln(25_000.0, 0.4);
                a.effects.push(net(dest, "GET", self.ln(500.0, 0.2), i, None));
                let hits = (0..4)
                    .map(|_| {
                        let host = *pick(&mut self.rng, RESEARCH_HOSTS);
                        let mut url = format!("https://{host}/");
                        text::slug(&mut self.rng, &mut url, '-');
                        let title = self.prose(40.0, 0.3);
                        let snip = self.prose(120.0, 0.4);
                        json::object(|o| {
                            o.str("title", &title).str("url", &url).str("snippet", &snip);
                        })
                    })
                    .collect();
                a.result(Self::json_array(hits), 3.0);
            }
            Tk::WebFetch => {
                // Research agents read widely: a long tail of sites, some never seen before.
                let host = if chance(&mut self.rng, 0.04) {
                    let mut h = String::from("www.");
                    h.push_str(pick_str(&mut self.rng, crate::text::RESEARCH_WORDS));
                    h.push_str(pick_str(&mut self.rng, crate::text::COMMON));
                    h.push('.');
                    h.push_str(pick_str(&mut self.rng, TLDS));
                    h.retain(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '-');
                    h.make_ascii_lowercase();
                    h
                } else {
                    let usual = *pick(&mut self.rng, RESEARCH_HOSTS);
                    self.host(usual).trim_end_matches(":443").to_string()
                };
                let mut url = format!("https://{host}/");
                text::slug(&mut self.rng, &mut url, '-');
                a.args = json::object(|o| {
                    o.str("url", &url);
                });
                let i = self.ln(120_000.0, 0.9);
                a.effects.push(net(format!("{host}:443"), "GET", self.ln(700.0, 0.2), i, None));
                let o = self.err(0.05, 0.01);
                a.outcome = o;
                if o == Outcome::Ok {
                    let body = self.prose(1200.0, 0.5);
                    a.result(body, 30.0);
                } else {
                    a.result("HTTP 403 Forbidden".into(), 1.0);
                }
            }
            Tk::PdfExtract => {
                let id = format!("{}.{:05}", self.rng.gen_range(2301..2513), self.rng.gen_range(0..30_000));
                let url = format!("https://arxiv.org/pdf/{id}");
                a.args = json::object(|o| {
                    o.str("url", &url).u64("max_pages", 20);
                });
                let b = self.ln(1_500_000.0, 0.7);
                a.effects.push(net("arxiv.org:443", "GET", 700, b, None));
                a.effects.push(file(format!("/tmp/research/{id}.pdf"), "write", b, None));
                let body = self.prose(1500.0, 0.3);
                a.result(body, 40.0);
            }
            Tk::ImageFetch => {
                let mut url = String::from("https://upload.wikimedia.org/wikipedia/commons/");
                text::hex_random(&mut self.rng, &mut url, 1);
                url.push('/');
                text::slug(&mut self.rng, &mut url, '_');
                url.push_str(".png");
                a.args = json::object(|o| {
                    o.str("url", &url).str("format", "base64");
                });
                let i = self.ln(300_000.0, 0.8);
                a.effects.push(net("upload.wikimedia.org:443", "GET", 600, i, None));
                // Images come back base64-encoded: high entropy that is entirely normal.
                let mut img = String::from("data:image/png;base64,");
                let n = self.rng.gen_range(400..1450);
                text::base64_file(&mut self.rng, &mut img, b"\x89PNG\r\n\x1a\n", n);
                text::truncate(&mut img, MAX_PAYLOAD);
                a.result(img, 100.0);
            }
            Tk::NotesWrite => {
                let focus = self.session.as_ref().map_or(0, |s| s.focus) % self.persona.items.len().max(1);
                let mut p = format!("{HOME}/notes/{}/", self.persona.items[focus]);
                if chance(&mut self.rng, 0.005) {
                    p = format!("{HOME}/drafts/");
                }
                text::slug(&mut self.rng, &mut p, '-');
                p.push_str(".md");
                let body = self.prose(700.0, 0.6);
                a.args = json::object(|o| {
                    o.str("path", &p).str("content", &body);
                });
                let n = body.len() as u64;
                a.effects.push(file(p, "write", n, None));
                a.result(format!("{{\"ok\":true,\"bytes\":{n}}}"), 1.0);
            }
            Tk::Translate => {
                let body = self.prose(300.0, 0.4);
                let target = *pick(&mut self.rng, &["de", "fr", "ja", "pt", "es"]);
                a.args = json::object(|o| {
                    o.str("text", &body).str("target", target);
                });
                let out = body.len() as u64 + 300;
                a.effects.push(net("translation.googleapis.com:443", "POST", out, self.ln(1500.0, 0.4), Some(body)));
                let mut res = String::from("Übersetzung: ");
                text::prose(&mut self.rng, &mut res, 300, crate::text::RESEARCH_WORDS);
                a.result(res, 1.0);
            }
            Tk::Kubectl => {
                let svc = *pick(&mut self.rng, &self.persona.items);
                let ns = *pick(&mut self.rng, &self.persona.spaces);
                let cmd = match self.rng.gen_range(0..5) {
                    0 => format!("kubectl get pods -n {ns} -l app={svc}"),
                    1 => format!("kubectl describe deploy/{svc} -n {ns}"),
                    2 => format!("kubectl logs deploy/{svc} -n {ns} --tail=200"),
                    3 => format!("kubectl rollout status deploy/{svc} -n {ns}"),
                    _ => format!("kubectl top pods -n {ns}"),
                };
                a.args = json::object(|o| {
                    o.str("cmd", &cmd);
                });
                a.effects.push(process(cmd));
                let i = self.ln(20_000.0, 0.8);
                a.effects.push(net("kubernetes.default.svc:443", "GET", self.ln(600.0, 0.2), i, None));
                let mut out = String::new();
                let len = lognormal(&mut self.rng, 500.0, 0.6) as usize;
                text::log_lines(&mut self.rng, &mut out, len, svc);
                a.result(out, 3.0);
                a.outcome = self.err(0.03, 0.005);
            }
            Tk::OpsShell => {
                let svc = *pick(&mut self.rng, &self.persona.items);
                let cmd = match self.rng.gen_range(0..6) {
                    0 => format!("systemctl status {svc}"),
                    1 => "df -h".to_string(),
                    2 => format!("journalctl -u {svc} --since -15min"),
                    3 => format!("curl -s http://{svc}.internal:8080/healthz"),
                    4 => format!("cat /etc/{svc}/config.yaml"),
                    _ => "free -m".to_string(),
                };
                a.args = json::object(|o| {
                    o.str("cmd", &cmd).u64("timeout_s", 60);
                });
                if let Some(path) = cmd.strip_prefix("cat ") {
                    let path = path.to_string();
                    let b = self.ln(2000.0, 0.5);
                    a.effects.push(file(path, "read", b, None));
                }
                a.effects.push(process(cmd));
                let mut out = String::new();
                let len = lognormal(&mut self.rng, 300.0, 0.6) as usize;
                text::log_lines(&mut self.rng, &mut out, len, svc);
                a.result(out, 2.0);
                a.outcome = self.err(0.04, 0.0);
            }
            Tk::LogsQuery => {
                let svc = *pick(&mut self.rng, &self.persona.items);
                let ns = *pick(&mut self.rng, &self.persona.spaces);
                let q = format!("{{app=\"{svc}\",namespace=\"{ns}\"}} |= \"error\"");
                let since = *pick(&mut self.rng, &["15m", "1h", "6h", "24h"]);
                a.args = json::object(|o| {
                    o.str("query", &q).str("since", since).u64("limit", 500);
                });
                let dest = if chance(&mut self.rng, 0.8) { "loki.internal:3100" } else { "grafana.internal:3000" };
                let i = self.ln(60_000.0, 0.9);
                a.effects.push(net(dest, "GET", self.ln(500.0, 0.2), i, None));
                let mut out = String::new();
                let len = lognormal(&mut self.rng, 900.0, 0.5) as usize;
                text::log_lines(&mut self.rng, &mut out, len, svc);
                a.result(out, 20.0);
            }
            Tk::CloudApi => {
                let (svc, action) = *pick(
                    &mut self.rng,
                    &[
                        ("ec2", "DescribeInstances"),
                        ("ec2", "DescribeSecurityGroups"),
                        ("autoscaling", "DescribeAutoScalingGroups"),
                        ("rds", "DescribeDBInstances"),
                        ("elbv2", "DescribeTargetHealth"),
                    ],
                );
                let region = self.persona.region;
                let mut bearer = String::new();
                let with_token = chance(&mut self.rng, 0.5);
                if with_token {
                    bearer.push_str("Bearer ");
                    let sub = self.principal();
                    text::jwt(&mut self.rng, &mut bearer, &sub);
                }
                a.args = json::object(|o| {
                    o.str("service", svc).str("action", action).str("region", region);
                    if with_token {
                        o.str("authorization", &bearer);
                    }
                });
                if chance(&mut self.rng, 0.15) {
                    let role = format!("arn:aws:iam::{}:role/deployer", self.persona.account);
                    let owner = self.persona.owner.clone();
                    a.effects.push(auth("role_assume", role, owner).privileged());
                }
                let dest = self.host(&format!("{svc}.{region}.amazonaws.com:443"));
                let body = format!("Action={action}&Version=2016-11-15");
                let i = self.ln(15_000.0, 0.8);
                a.effects.push(net(dest, "POST", body.len() as u64 + 900, i, Some(body)));
                let n = self.rng.gen_range(0..40);
                a.result(
                    format!(
                        "{{\"{action}Response\":{{\"items\":{n},\"requestId\":\"{}\"}}}}",
                        text::hex_string(&mut self.rng, 8)
                    ),
                    10.0,
                );
                a.outcome = self.err(0.02, 0.01);
            }
            Tk::Deploy => {
                let svc = *pick(&mut self.rng, &self.persona.items);
                let ns = *pick(&mut self.rng, &self.persona.spaces);
                let digest = text::hex_string(&mut self.rng, 32);
                let image = format!("registry.internal:5000/{svc}@sha256:{digest}");
                let replicas = self.rng.gen_range(2..12u64);
                a.args = json::object(|o| {
                    o.str("service", svc).str("namespace", ns).str("image", &image).u64("replicas", replicas);
                });
                let body = json::object(|o| {
                    o.str("app", svc).str("image", &image).bool("prune", false);
                });
                a.effects.push(net(
                    "argocd.internal:443",
                    "POST",
                    body.len() as u64 + 400,
                    self.ln(2000.0, 0.3),
                    Some(body),
                ));
                a.result(format!("{{\"app\":\"{svc}\",\"status\":\"Progressing\"}}"), 1.0);
                a.outcome = self.err(0.04, 0.01);
            }
            Tk::Terraform => {
                let cmd = format!("terraform -chdir=/opt/infra/{} plan -out=tfplan", self.persona.region);
                a.args = json::object(|o| {
                    o.str("cmd", &cmd);
                });
                a.effects.push(process(cmd));
                let region = self.persona.region;
                let i = self.ln(200_000.0, 0.5);
                a.effects.push(net(format!("ec2.{region}.amazonaws.com:443"), "POST", self.ln(30_000.0, 0.5), i, None));
                let (add, chg) = (self.rng.gen_range(0..5), self.rng.gen_range(0..5));
                a.result(format!("Plan: {add} to add, {chg} to change, 0 to destroy."), 30.0);
            }
            Tk::MailSearch => {
                let q = format!(
                    "from:{} {}",
                    self.persona.contacts.first().map_or("team", |s| s.as_str()),
                    pick(&mut self.rng, crate::text::EMAIL_WORDS)
                );
                a.args = json::object(|o| {
                    o.str("query", &q).u64("top", 10);
                });
                let i = self.ln(12_000.0, 0.5);
                a.effects.push(net("graph.microsoft.com:443", "GET", self.ln(600.0, 0.2), i, None));
                let items = (0..3)
                    .map(|_| {
                        let from = pick(&mut self.rng, &self.persona.contacts).clone();
                        let subject = self.prose(40.0, 0.4);
                        let id = text::hex_string(&mut self.rng, 10);
                        json::object(|o| {
                            o.str("id", &id).str("from", &from).str("subject", &subject);
                        })
                    })
                    .collect();
                a.result(Self::json_array(items), 4.0);
            }
            Tk::MailRead => {
                let id = text::hex_string(&mut self.rng, 10);
                a.args = json::object(|o| {
                    o.str("message_id", &id);
                });
                let i = self.ln(30_000.0, 0.8);
                a.effects.push(net("graph.microsoft.com:443", "GET", self.ln(500.0, 0.2), i, None));
                let mut body = self.prose(700.0, 0.6);
                if chance(&mut self.rng, 0.08) {
                    // An inline PDF attachment.
                    body.push_str("\n--attachment: contract.pdf--\n");
                    let n = self.rng.gen_range(200..800);
                    text::base64_file(&mut self.rng, &mut body, b"%PDF-1.7\n", n);
                    text::truncate(&mut body, MAX_PAYLOAD);
                }
                a.result(body, 4.0);
            }
            Tk::Calendar => {
                let from = Self::date(t);
                let to = Self::date(t + 7 * MS_PER_DAY);
                a.args = json::object(|o| {
                    o.str("start", &from).str("end", &to);
                });
                a.effects.push(net("graph.microsoft.com:443", "GET", 500, self.ln(8000.0, 0.5), None));
                let ev = (0..3)
                    .map(|_| {
                        let subject = self.prose(30.0, 0.3);
                        let h = self.rng.gen_range(8..18);
                        json::object(|o| {
                            o.str("subject", &subject).str("start", &format!("{from}T{h:02}:00:00"));
                        })
                    })
                    .collect();
                a.result(Self::json_array(ev), 2.0);
            }
            Tk::MailSend => {
                let to = pick(&mut self.rng, &self.persona.contacts).clone();
                let subject = self.prose(40.0, 0.3);
                let body = self.prose(500.0, 0.6);
                a.args = json::object(|o| {
                    o.str("to", &to).str("subject", &subject).str("body", &body);
                });
                let payload = json::object(|o| {
                    o.obj("message", |m| {
                        m.str("subject", &subject).str("to", &to).str("body", &body);
                    });
                });
                let out = payload.len() as u64 + 600;
                a.effects.push(net("graph.microsoft.com:443", "POST", out, 300, Some(payload)));
                a.result("{\"status\":202}".into(), 1.0);
                a.outcome = self.err(0.01, 0.002);
            }
            Tk::Contacts => {
                let name = text::person_name(&mut self.rng);
                a.args = json::object(|o| {
                    o.str("name", &name);
                });
                a.effects.push(net("graph.microsoft.com:443", "GET", 400, self.ln(3000.0, 0.4), None));
                let mail = pick(&mut self.rng, &self.persona.contacts).clone();
                a.result(format!("{{\"displayName\":\"{name}\",\"mail\":\"{mail}\"}}"), 1.0);
            }
            Tk::DriveUpload => {
                let mut p = format!("{HOME}/attachments/");
                text::slug(&mut self.rng, &mut p, '-');
                p.push_str(".pdf");
                a.args = json::object(|o| {
                    o.str("path", &p).str("folder", "Shared/Contracts");
                });
                let b = self.ln(400_000.0, 0.8);
                a.effects.push(file(p, "read", b, None));
                let mut body = String::new();
                let n = self.rng.gen_range(200..700);
                text::base64_file(&mut self.rng, &mut body, b"%PDF-1.7\n", n);
                a.effects.push(net("graph.microsoft.com:443", "PUT", b + 500, 400, Some(body)));
                a.result("{\"status\":201}".into(), 1.0);
            }
            Tk::HttpCheck => {
                let (url, dest, method) = if c.name == "devops-agent" {
                    let svc = *pick(&mut self.rng, &self.persona.items);
                    (format!("http://{svc}.internal:8080/healthz"), format!("{svc}.internal:8080"), "GET")
                } else {
                    let path = *pick(&mut self.rng, &["api/v1/orders", "graphql", "api/login", "health"]);
                    (format!("http://localhost:8080/{path}"), "localhost:8080".to_string(), "POST")
                };
                a.args = json::object(|o| {
                    o.str("url", &url).str("method", method);
                });
                let payload =
                    (method == "POST").then(|| "{\"query\":\"{ orders(first: 5) { id total } }\"}".to_string());
                let i = self.ln(800.0, 0.6);
                a.effects.push(net(dest, method, self.ln(300.0, 0.3), i, payload));
                let code = if chance(&mut self.rng, 0.9) { 200 } else { 503 };
                a.result(format!("{{\"status\":{code}}}"), 1.0);
                if code != 200 {
                    a.outcome = Outcome::Error;
                }
            }
        }
        a
    }
}

impl Persona {
    fn draw(class: &Class, r: &mut SimRng) -> Persona {
        fn choose(r: &mut SimRng, from: &[&'static str], n: usize) -> Vec<&'static str> {
            let mut v: Vec<&'static str> = from.to_vec();
            for i in 0..v.len() {
                let j = r.gen_range(i..v.len());
                v.swap(i, j);
            }
            v.truncate(n.clamp(1, from.len()));
            v
        }
        let region = *pick(r, REGIONS);
        let account = r.gen_range(100_000_000_000u64..999_999_999_999);
        let mut pod = String::from(class.name);
        pod.push('-');
        text::hex_random(r, &mut pod, 4);
        pod.push('-');
        text::hex_random(r, &mut pod, 2);
        let mut owner = String::new();
        text::person_email(r, &mut owner, "corp.example.com");
        let (items, spaces, langs, contacts) = match class.name {
            "code-assistant" => {
                let n = r.gen_range(1..4);
                let picks = choose(r, &REPOS.iter().map(|x| x.0).collect::<Vec<_>>(), n);
                let langs =
                    picks.iter().map(|p| REPOS.iter().find(|x| x.0 == *p).map_or(Lang::Rust, |x| x.1)).collect();
                (picks, vec![], langs, vec![])
            }
            "data-pipeline" => {
                let n = r.gen_range(2..5);
                let env = *pick(r, &["acme-prod-lake", "acme-analytics", "acme-raw-events"]);
                (choose(r, DATASETS, n), vec![env, "acme-shared-exports"], vec![], vec![])
            }
            "research-agent" => {
                let n = r.gen_range(2..6);
                (choose(r, TOPICS, n), vec![], vec![], vec![])
            }
            "devops-agent" => {
                let n = r.gen_range(3..7);
                let m = r.gen_range(1..4);
                (choose(r, SERVICES, n), choose(r, NAMESPACES, m), vec![], vec![])
            }
            "email-assistant" => {
                let mut contacts = Vec::new();
                for _ in 0..r.gen_range(5..15) {
                    let mut s = String::new();
                    text::person_email(r, &mut s, "corp.example.com");
                    contacts.push(s);
                }
                for _ in 0..r.gen_range(1..4) {
                    let mut s = String::new();
                    let d = *pick(r, PARTNER_DOMAINS);
                    text::person_email(r, &mut s, d);
                    contacts.push(s);
                }
                let n = r.gen_range(2..5);
                (choose(r, PROJECTS, n), vec![], vec![], contacts)
            }
            _ => {
                let n = r.gen_range(2..5);
                (choose(r, PRODUCTS, n), vec![], vec![], vec![])
            }
        };
        let langs = if langs.is_empty() { vec![Lang::Python] } else { langs };
        let spaces = if spaces.is_empty() { vec!["default"] } else { spaces };
        Persona {
            items,
            spaces,
            langs,
            owner,
            contacts: if contacts.is_empty() { vec!["team@corp.example.com".to_string()] } else { contacts },
            region,
            account,
            pod,
        }
    }
}
