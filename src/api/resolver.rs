//! The embedded resolver (r53's own API): forwarding rules like Route 53 Resolver's, cache
//! statistics, and flushing the cache.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{reply, JsonBody, PathId};
use super::ApiState;
use crate::model::parse_name;
use crate::resolver::{ForwardingRule, Resolver};

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/v1/resolver/rules", get(list_rules))
        .route(
            "/v1/resolver/rules/{domain}",
            put(put_rule).delete(delete_rule),
        )
        .route("/v1/resolver/stats", get(stats))
        .route("/v1/resolver/flush", post(flush))
}

/// Most upstreams one rule may name.
const MAX_TARGETS: usize = 16;

fn resolver(state: &ApiState) -> Result<&Resolver, ApiError> {
    state.resolver.as_deref().ok_or_else(|| {
        ApiError::Conflict(
            "ResolverDisabled",
            "The embedded resolver is off (r53 serve --no-recursion)".into(),
        )
    })
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct TargetIp {
    ip: String,
    #[serde(default = "dns_port")]
    port: u16,
}

fn dns_port() -> u16 {
    53
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RuleDto {
    domain_name: String,
    /// Empty: Route 53's SYSTEM rule (resolve normally below this domain).
    target_ips: Vec<TargetIp>,
}

impl From<&ForwardingRule> for RuleDto {
    fn from(rule: &ForwardingRule) -> Self {
        Self {
            domain_name: rule.domain.to_ascii(),
            target_ips: rule
                .upstreams
                .iter()
                .map(|a| TargetIp {
                    ip: a.ip().to_string(),
                    port: a.port(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct PutRuleRequest {
    target_ips: Vec<TargetIp>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RulesResponse {
    rules: Vec<RuleDto>,
}

async fn list_rules(State(state): State<ApiState>) -> Result<Response, ApiError> {
    resolver(&state)?;
    let rules = state.service.rules().await;
    Ok(reply(
        StatusCode::OK,
        &RulesResponse {
            rules: rules.iter().map(RuleDto::from).collect(),
        },
    ))
}

async fn put_rule(
    State(state): State<ApiState>,
    PathId(domain): PathId,
    JsonBody(request): JsonBody<PutRuleRequest>,
) -> Result<Response, ApiError> {
    let resolver = resolver(&state)?;
    let domain = parse_name(&domain)?;
    if request.target_ips.len() > MAX_TARGETS {
        return Err(ApiError::InvalidInput(format!(
            "A rule may name at most {MAX_TARGETS} TargetIps"
        )));
    }
    let mut upstreams = Vec::with_capacity(request.target_ips.len());
    for target in &request.target_ips {
        let ip = target
            .ip
            .parse()
            .map_err(|_| ApiError::InvalidInput(format!("Invalid TargetIps Ip '{}'", target.ip)))?;
        if target.port == 0 {
            return Err(ApiError::InvalidInput("Invalid TargetIps Port 0".into()));
        }
        upstreams.push(SocketAddr::new(ip, target.port));
    }
    let rule = ForwardingRule { domain, upstreams };
    let rules = state.service.put_rule(rule.clone()).await?;
    resolver.set_rules(rules);
    Ok(reply(StatusCode::OK, &RuleDto::from(&rule)))
}

async fn delete_rule(
    State(state): State<ApiState>,
    PathId(domain): PathId,
) -> Result<StatusCode, ApiError> {
    let resolver = resolver(&state)?;
    let domain = parse_name(&domain)?;
    let rules = state.service.delete_rule(&domain).await?;
    resolver.set_rules(rules);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StatsResponse {
    hits: u64,
    misses: u64,
    entries: u64,
    evictions: u64,
    upstream_errors: u64,
    upstream_queries: u64,
    stale_answers: u64,
}

async fn stats(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let s = resolver(&state)?.stats();
    Ok(reply(
        StatusCode::OK,
        &StatsResponse {
            hits: s.hits,
            misses: s.misses,
            entries: s.entries,
            evictions: s.evictions,
            upstream_errors: s.upstream_errors,
            upstream_queries: s.upstream_queries,
            stale_answers: s.stale_answers,
        },
    ))
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct FlushRequest {
    /// Only this name's entries; the whole cache when absent.
    #[serde(default, deserialize_with = "super::types::present")]
    name: Option<String>,
}

async fn flush(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<FlushRequest>,
) -> Result<StatusCode, ApiError> {
    let resolver = resolver(&state)?;
    match request.name {
        Some(name) => resolver.flush(Some(&parse_name(&name)?)),
        None => resolver.flush(None),
    }
    Ok(StatusCode::NO_CONTENT)
}
