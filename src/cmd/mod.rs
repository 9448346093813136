//! One module per subcommand. Subcommands whose feature is not built yet exit with status 2 and say so.

pub mod replay;
pub mod rules;
pub mod run;
pub mod simulate;
pub mod train;
pub mod webhook;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Parses and type-checks every item of a rule pack.
    Check {
        /// A rule pack directory or file.
        path: String,
    },
    /// Runs a rule pack's own test cases.
    Test {
        /// A rule pack directory or file.
        path: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Checks a Standard Webhooks signature as a receiver would.
    #[command(
        after_help = "Example:\n  vigil webhook verify --secret whsec_... --id msg_1 --timestamp 1614265330 --signature v1,... body.json"
    )]
    Verify {
        #[arg(long)]
        secret: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        timestamp: String,
        #[arg(long)]
        signature: String,
        /// Check the timestamp against this Unix time instead of the clock (for recorded requests).
        #[arg(long)]
        now: Option<i64>,
        /// File holding the exact request body (`-` for stdin).
        body_file: String,
    },
}

pub fn rules(c: RulesCommand) -> Result<u8> {
    match c {
        RulesCommand::Check { path } => rules::check(&path),
        RulesCommand::Test { path } => rules::test(&path),
    }
}

pub fn webhook(c: WebhookCommand) -> Result<u8> {
    match c {
        WebhookCommand::Verify { secret, id, timestamp, signature, now, body_file } => {
            webhook::verify_cmd(&secret, &id, &timestamp, &signature, &body_file, now)
        }
    }
}
