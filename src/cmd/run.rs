//! `vigil run`: the live detector.

use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// TOML configuration; without it the embedded default runs.
    #[arg(long)]
    pub config: Option<String>,
}

pub fn run(_a: RunArgs) -> Result<u8> {
    Err(super::not_supported("`vigil run` (the live detector)"))
}
