//! `r53 rds`: a database endpoint controller that registers writer and reader endpoints.

use clap::Args;

#[derive(Debug, Args, Clone)]
pub struct RdsArgs {}

pub async fn run(_args: RdsArgs) -> anyhow::Result<()> {
    anyhow::bail!("r53 rds is not implemented yet")
}
