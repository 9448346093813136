//! The agent classes: what each kind of agent does, how often, with which tools, models, hosts and
//! files. Pure data; the behaviour that reads it lives in `agent`. The names are fixed for every seed.

/// Every tool any class knows. What a tool does (its arguments, side effects and result) is in
/// `agent::Agent::plan_tool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tk {
    // support-bot
    KbSearch,
    CrmLookup,
    OrderStatus,
    TicketUpdate,
    RefundIssue,
    Handoff,
    TemplateRead,
    // code-assistant
    FsRead,
    FsWrite,
    Grep,
    Shell,
    DocsFetch,
    GitCommit,
    Screenshot,
    // data-pipeline
    QueuePoll,
    S3Get,
    Transform,
    DbLoad,
    S3Put,
    SchemaCheck,
    // research-agent
    WebSearch,
    WebFetch,
    PdfExtract,
    ImageFetch,
    NotesWrite,
    Translate,
    // devops-agent
    Kubectl,
    OpsShell,
    LogsQuery,
    CloudApi,
    Deploy,
    Terraform,
    // email-assistant
    MailSearch,
    MailRead,
    Calendar,
    MailSend,
    Contacts,
    DriveUpload,
    // shared
    /// A plain HTTP request to an internal service (rare for the classes that have it).
    HttpCheck,
}

/// One tool in a class's vocabulary.
pub(crate) struct ToolDef {
    /// Name written in `tool`.
    pub name: &'static str,
    pub kind: Tk,
    /// Base weight in the class's tool mix (rare tools have tiny weights).
    pub weight: f64,
    /// Median execution time.
    pub latency_ms: f64,
}

const fn tool(name: &'static str, kind: Tk, weight: f64, latency_ms: f64) -> ToolDef {
    ToolDef { name, kind, weight, latency_ms }
}

/// A sensitive action a hijacked agent may take (prompt injection); each class lists the ones that are
/// out of character for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sensitive {
    /// `shell.exec` of a download-and-run command.
    ShellPipe,
    /// `send_email` to an outside address.
    EmailExternal,
    /// `fs.write` to a path that grants persistence or access.
    WritePersistence,
    /// `http.request` POST to a request-catcher.
    HttpPost,
}

/// An agent class.
pub(crate) struct Class {
    pub name: &'static str,
    /// Weight of the class in a fleet.
    pub share: f64,
    /// Writes `ts` as integer epoch milliseconds instead of RFC 3339.
    pub ts_int: bool,
    /// UTC offsets (hours) its instances live in.
    pub tz_hours: &'static [f64],
    /// Activity by local hour of day (multiplies the session rate).
    pub rhythm: [f64; 24],
    /// Session arrivals per hour at rhythm 1.
    pub sessions_per_hour: f64,
    /// Conversations with a user (message events) rather than batch jobs.
    pub interactive: bool,
    /// Turns per session: 1 + lognormal(median, sigma).
    pub turns: (f64, f64),
    /// Mean tool steps per turn (geometric).
    pub steps_mean: f64,
    /// Time between turns: lognormal(median seconds, sigma).
    pub think_s: (f64, f64),
    /// Models and their weights.
    pub models: &'static [(&'static str, f64)],
    /// Prompt tokens lognormal(median, sigma); grows with the session.
    pub tok_in: (f64, f64),
    /// Completion tokens lognormal(median, sigma).
    pub tok_out: (f64, f64),
    pub tools: &'static [ToolDef],
    /// Markov boosts: after `from`, the weight of `to` is multiplied by `1 + boost`.
    pub links: &'static [(Tk, Tk, f64)],
    /// Word list for its prose.
    pub words: &'static [&'static str],
    /// User message length lognormal(median bytes, sigma).
    pub user_len: (f64, f64),
    /// Assistant reply length lognormal(median bytes, sigma).
    pub reply_len: (f64, f64),
    /// Probability of an `auth token_request` at session start.
    pub token_request_p: f64,
    /// Scope asked for by its token requests.
    pub scope: &'static str,
    /// Prefix of its session ids.
    pub session_prefix: &'static str,
    /// Destinations it talks to only very rarely (benign novelty).
    pub rare_hosts: &'static [&'static str],
    /// Prompt-injection follow-ups that are out of character for it.
    pub sensitive: &'static [Sensitive],
    /// The tool an injection arrives through (its result carries the text).
    pub injection_vector: Tk,
    /// The tool it reads data with (exfiltration reads, runaway loops).
    pub read_tool: Tk,
    /// Estimator calibration: mean events per session.
    pub est_events_per_session: f64,
    /// Estimator calibration: mean session length in hours.
    pub est_session_hours: f64,
}

impl Class {
    /// Index of a tool kind in `tools`.
    pub(crate) fn tool_index(&self, kind: Tk) -> Option<usize> {
        self.tools.iter().position(|t| t.kind == kind)
    }

    /// Whether the class has a tool of this kind.
    pub(crate) fn has(&self, kind: Tk) -> bool {
        self.tool_index(kind).is_some()
    }

    /// Largest value of the daily rhythm.
    pub(crate) fn rhythm_max(&self) -> f64 {
        self.rhythm.iter().copied().fold(0.0, f64::max)
    }
}

const BUSINESS: [f64; 24] = [
    0.05, 0.04, 0.03, 0.03, 0.04, 0.08, 0.2, 0.45, 0.8, 1.0, 1.0, 0.95, 0.85, 0.95, 1.0, 1.0, 0.9, 0.7, 0.5, 0.4, 0.3,
    0.2, 0.12, 0.08,
];
const DEV: [f64; 24] = [
    0.04, 0.03, 0.02, 0.02, 0.02, 0.03, 0.06, 0.2, 0.55, 0.9, 1.0, 1.0, 0.6, 0.85, 1.0, 1.0, 0.95, 0.8, 0.5, 0.35, 0.3,
    0.25, 0.15, 0.08,
];
const BATCH: [f64; 24] = [
    1.4, 1.6, 1.6, 1.5, 1.2, 0.8, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.7, 0.9,
    1.1,
];
const RESEARCH: [f64; 24] = [
    0.15, 0.1, 0.08, 0.06, 0.06, 0.08, 0.15, 0.3, 0.6, 0.8, 0.9, 0.9, 0.85, 0.9, 0.9, 0.9, 0.85, 0.8, 0.7, 0.7, 0.65,
    0.55, 0.4, 0.25,
];
const OPS: [f64; 24] = [
    0.12, 0.1, 0.1, 0.1, 0.1, 0.12, 0.2, 0.4, 0.8, 1.0, 1.0, 0.95, 0.8, 0.95, 1.0, 0.95, 0.85, 0.6, 0.4, 0.3, 0.25,
    0.2, 0.15, 0.12,
];
const MAIL: [f64; 24] = [
    0.03, 0.02, 0.02, 0.02, 0.03, 0.08, 0.3, 0.8, 1.2, 1.1, 0.9, 0.8, 0.7, 0.8, 0.85, 0.8, 0.75, 0.6, 0.35, 0.25, 0.2,
    0.15, 0.08, 0.05,
];

use crate::text::{CODE_WORDS, DEVOPS_WORDS, EMAIL_WORDS, PIPELINE_WORDS, RESEARCH_WORDS, SUPPORT_WORDS};
use Sensitive::*;
use Tk::*;

/// The classes, in the order of `crate::CLASSES`.
pub(crate) static CLASS_TABLE: [Class; 6] = [
    Class {
        name: "support-bot",
        share: 0.28,
        ts_int: false,
        tz_hours: &[-8.0, -6.0, -5.0, 0.0, 1.0, 2.0, 5.5, 8.0, 9.0],
        rhythm: BUSINESS,
        sessions_per_hour: 6.0,
        interactive: true,
        turns: (2.5, 0.7),
        steps_mean: 1.2,
        think_s: (35.0, 0.8),
        models: &[("gpt-4o-mini", 0.75), ("claude-3-5-haiku", 0.25)],
        tok_in: (1400.0, 0.4),
        tok_out: (150.0, 0.5),
        tools: &[
            tool("kb.search", KbSearch, 0.35, 180.0),
            tool("crm.lookup", CrmLookup, 0.25, 120.0),
            tool("order.status", OrderStatus, 0.2, 150.0),
            tool("ticket.update", TicketUpdate, 0.15, 250.0),
            tool("refund.issue", RefundIssue, 0.02, 900.0),
            tool("handoff.human", Handoff, 0.012, 60.0),
            tool("template.read", TemplateRead, 0.004, 20.0),
        ],
        links: &[
            (CrmLookup, OrderStatus, 2.5),
            (OrderStatus, TicketUpdate, 1.5),
            (KbSearch, KbSearch, 0.8),
            (OrderStatus, RefundIssue, 2.0),
        ],
        words: SUPPORT_WORDS,
        user_len: (110.0, 0.6),
        reply_len: (380.0, 0.5),
        token_request_p: 0.3,
        scope: "crm:read orders:read tickets:write",
        session_prefix: "conv",
        rare_hosts: &["status.internal:443", "translation.googleapis.com:443"],
        sensitive: &[ShellPipe, EmailExternal, HttpPost],
        injection_vector: KbSearch,
        read_tool: CrmLookup,
        est_events_per_session: 30.6,
        est_session_hours: 0.036,
    },
    Class {
        name: "code-assistant",
        share: 0.18,
        ts_int: false,
        tz_hours: &[-8.0, -5.0, 0.0, 1.0, 2.0, 5.5],
        rhythm: DEV,
        sessions_per_hour: 1.5,
        interactive: true,
        turns: (4.0, 0.8),
        steps_mean: 3.5,
        think_s: (80.0, 1.0),
        models: &[("claude-sonnet-4", 0.6), ("gpt-4.1", 0.3), ("o3-mini", 0.1)],
        tok_in: (12_000.0, 0.7),
        tok_out: (900.0, 0.8),
        tools: &[
            tool("fs.read", FsRead, 0.35, 15.0),
            tool("fs.write", FsWrite, 0.15, 20.0),
            tool("search.grep", Grep, 0.18, 120.0),
            tool("shell.exec", Shell, 0.22, 4000.0),
            tool("web.fetch", DocsFetch, 0.06, 600.0),
            tool("git.commit", GitCommit, 0.03, 300.0),
            tool("browser.screenshot", Screenshot, 0.006, 1500.0),
            tool("http.request", HttpCheck, 0.006, 150.0),
        ],
        links: &[
            (Grep, FsRead, 2.5),
            (FsRead, FsWrite, 1.2),
            (FsWrite, Shell, 3.0),
            (Shell, FsRead, 1.0),
            (Shell, GitCommit, 0.6),
            (FsRead, FsRead, 0.8),
        ],
        words: CODE_WORDS,
        user_len: (160.0, 0.8),
        reply_len: (700.0, 0.7),
        token_request_p: 0.1,
        scope: "repo:read repo:write",
        session_prefix: "cs",
        rare_hosts: &["gitlab.com:443", "go.dev:443", "pkg.go.dev:443"],
        sensitive: &[EmailExternal, WritePersistence, HttpPost],
        injection_vector: FsRead,
        read_tool: FsRead,
        est_events_per_session: 107.6,
        est_session_hours: 0.326,
    },
    Class {
        name: "data-pipeline",
        share: 0.12,
        ts_int: true,
        tz_hours: &[0.0],
        rhythm: BATCH,
        sessions_per_hour: 2.0,
        interactive: false,
        turns: (3.0, 0.6),
        steps_mean: 4.0,
        think_s: (15.0, 0.8),
        models: &[("gpt-4o-mini", 0.7), ("llama-3.1-8b-instruct", 0.3)],
        tok_in: (600.0, 0.5),
        tok_out: (40.0, 0.6),
        tools: &[
            tool("queue.poll", QueuePoll, 0.22, 80.0),
            tool("s3.get", S3Get, 0.22, 350.0),
            tool("transform.run", Transform, 0.22, 2500.0),
            tool("warehouse.load", DbLoad, 0.16, 1800.0),
            tool("s3.put", S3Put, 0.12, 600.0),
            tool("schema.check", SchemaCheck, 0.01, 90.0),
        ],
        links: &[
            (QueuePoll, S3Get, 2.0),
            (S3Get, Transform, 2.5),
            (Transform, DbLoad, 2.0),
            (Transform, S3Put, 1.5),
            (DbLoad, QueuePoll, 1.0),
        ],
        words: PIPELINE_WORDS,
        user_len: (200.0, 0.4),
        reply_len: (160.0, 0.5),
        token_request_p: 0.5,
        scope: "s3:read s3:write warehouse:load",
        session_prefix: "run",
        rare_hosts: &["s3.eu-west-1.amazonaws.com:443", "sqs.us-east-1.amazonaws.com:443"],
        sensitive: &[ShellPipe, EmailExternal, WritePersistence],
        injection_vector: S3Get,
        read_tool: S3Get,
        est_events_per_session: 89.7,
        est_session_hours: 0.029,
    },
    Class {
        name: "research-agent",
        share: 0.15,
        ts_int: false,
        tz_hours: &[-5.0, 0.0, 1.0, 8.0],
        rhythm: RESEARCH,
        sessions_per_hour: 1.2,
        interactive: true,
        turns: (2.5, 0.7),
        steps_mean: 4.0,
        think_s: (120.0, 1.0),
        models: &[("gpt-4.1", 0.5), ("claude-opus-4", 0.3), ("gemini-2.5-pro", 0.2)],
        tok_in: (8000.0, 0.8),
        tok_out: (1500.0, 0.7),
        tools: &[
            tool("web.search", WebSearch, 0.3, 700.0),
            tool("web.fetch", WebFetch, 0.38, 1200.0),
            tool("pdf.extract", PdfExtract, 0.1, 2500.0),
            tool("image.fetch", ImageFetch, 0.07, 900.0),
            tool("notes.write", NotesWrite, 0.12, 25.0),
            tool("translate", Translate, 0.01, 800.0),
        ],
        links: &[
            (WebSearch, WebFetch, 3.0),
            (WebFetch, WebFetch, 1.0),
            (WebFetch, NotesWrite, 0.8),
            (WebSearch, PdfExtract, 1.0),
        ],
        words: RESEARCH_WORDS,
        user_len: (180.0, 0.7),
        reply_len: (1200.0, 0.6),
        token_request_p: 0.05,
        scope: "search:query",
        session_prefix: "rs",
        rare_hosts: &["web.archive.org:443", "archive.ph:443"],
        sensitive: &[ShellPipe, EmailExternal, WritePersistence],
        injection_vector: WebFetch,
        read_tool: WebFetch,
        est_events_per_session: 74.2,
        est_session_hours: 0.317,
    },
    Class {
        name: "devops-agent",
        share: 0.12,
        ts_int: false,
        tz_hours: &[-8.0, -5.0, 0.0, 1.0],
        rhythm: OPS,
        sessions_per_hour: 1.5,
        interactive: true,
        turns: (2.5, 0.8),
        steps_mean: 3.0,
        think_s: (60.0, 1.0),
        models: &[("claude-sonnet-4", 0.7), ("gpt-4.1", 0.3)],
        tok_in: (5000.0, 0.7),
        tok_out: (500.0, 0.7),
        tools: &[
            tool("kubectl", Kubectl, 0.3, 900.0),
            tool("shell.exec", OpsShell, 0.22, 1500.0),
            tool("logs.query", LogsQuery, 0.22, 1200.0),
            tool("cloud.api", CloudApi, 0.13, 700.0),
            tool("deploy.rollout", Deploy, 0.08, 3000.0),
            tool("terraform.plan", Terraform, 0.015, 12_000.0),
            tool("http.request", HttpCheck, 0.012, 200.0),
        ],
        links: &[
            (LogsQuery, Kubectl, 2.0),
            (Kubectl, Kubectl, 1.0),
            (Kubectl, Deploy, 0.8),
            (Deploy, Kubectl, 2.0),
            (OpsShell, OpsShell, 0.8),
        ],
        words: DEVOPS_WORDS,
        user_len: (140.0, 0.7),
        reply_len: (500.0, 0.6),
        token_request_p: 0.4,
        scope: "k8s:read k8s:deploy cloud:read",
        session_prefix: "ops",
        rare_hosts: &["api.cloudflare.com:443", "api.github.com:443"],
        sensitive: &[EmailExternal, WritePersistence, HttpPost],
        injection_vector: LogsQuery,
        read_tool: Kubectl,
        est_events_per_session: 68.4,
        est_session_hours: 0.131,
    },
    Class {
        name: "email-assistant",
        share: 0.15,
        ts_int: false,
        tz_hours: &[-5.0, 0.0, 1.0, 9.0],
        rhythm: MAIL,
        sessions_per_hour: 3.0,
        interactive: true,
        turns: (1.5, 0.6),
        steps_mean: 2.0,
        think_s: (60.0, 0.8),
        models: &[("gpt-4o", 0.6), ("claude-3-5-haiku", 0.4)],
        tok_in: (2500.0, 0.6),
        tok_out: (300.0, 0.6),
        tools: &[
            tool("mail.search", MailSearch, 0.28, 300.0),
            tool("mail.read", MailRead, 0.32, 200.0),
            tool("calendar.lookup", Calendar, 0.15, 250.0),
            tool("mail.send", MailSend, 0.15, 400.0),
            tool("contacts.lookup", Contacts, 0.08, 150.0),
            tool("drive.upload", DriveUpload, 0.006, 1500.0),
        ],
        links: &[(MailSearch, MailRead, 3.0), (MailRead, MailSend, 1.0), (Contacts, MailSend, 2.0)],
        words: EMAIL_WORDS,
        user_len: (120.0, 0.6),
        reply_len: (450.0, 0.6),
        token_request_p: 0.35,
        scope: "Mail.Read Mail.Send Calendars.Read",
        session_prefix: "thr",
        rare_hosts: &["outlook.office365.com:443"],
        sensitive: &[ShellPipe, EmailExternal, WritePersistence],
        injection_vector: MailRead,
        read_tool: MailRead,
        est_events_per_session: 27.0,
        est_session_hours: 0.037,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_public_names_and_is_sane() {
        let names: Vec<&str> = CLASS_TABLE.iter().map(|c| c.name).collect();
        assert_eq!(names, crate::CLASSES);
        for c in &CLASS_TABLE {
            assert!(c.has(c.injection_vector) && c.has(c.read_tool), "{}", c.name);
            assert!(!c.sensitive.is_empty() && !c.tools.is_empty() && !c.tz_hours.is_empty());
            for (from, to, _) in c.links {
                assert!(c.has(*from) && c.has(*to), "{}: link to a foreign tool", c.name);
            }
            assert!(c.rhythm.iter().all(|&v| v > 0.0));
        }
        assert_eq!(CLASS_TABLE.iter().filter(|c| c.ts_int).count(), 1);
    }
}
