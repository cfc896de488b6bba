//! `r53 lb`: a small HTTP/1.1 load balancer that registers itself as an Alias target.

use clap::Args;

#[derive(Debug, Args, Clone)]
pub struct LbArgs {}

pub async fn run(_args: LbArgs) -> anyhow::Result<()> {
    anyhow::bail!("r53 lb is not implemented yet")
}
