//! `GetUsage`: tokens and cost added up per model, agent, user or day.

use chrono::{DateTime, Utc};
use nexus_security::Principal;
use nexus_store::{UsageFilter, UsageGrouping, UsageTotal};

use super::GatewayService;
use crate::error::ApiError;
use crate::pb;

impl GatewayService {
    pub(crate) async fn usage(
        &self,
        principal: &Principal,
        request: pb::GetUsageRequest,
    ) -> Result<pb::GetUsageResponse, ApiError> {
        let by = match request.by.trim() {
            "" | "model" => UsageGrouping::Model,
            "agent" => UsageGrouping::Agent,
            "user" => UsageGrouping::User,
            "day" => UsageGrouping::Day,
            other => {
                return Err(ApiError::invalid(format!(
                    "cannot group usage by `{other}`: use model, agent, user or day"
                )));
            }
        };
        let since = match request.since.trim() {
            "" => None,
            text => Some(
                DateTime::parse_from_rfc3339(text)
                    .map_err(|e| {
                        ApiError::invalid(format!(
                            "since `{text}` is not an RFC 3339 time ({e}), e.g. \
                             2026-11-01T00:00:00Z"
                        ))
                    })?
                    .with_timezone(&Utc),
            ),
        };
        let user_id = if request.user.trim().is_empty() {
            (!principal.is_admin()).then_some(principal.user_id)
        } else if principal.is_admin() {
            Some(
                self.resolve_user(&request.user, principal.user_id)
                    .await?
                    .id,
            )
        } else {
            return Err(ApiError::PermissionDenied(
                "only admins can see other users' usage".to_owned(),
            ));
        };
        let agent_id = if request.agent.trim().is_empty() {
            None
        } else {
            Some(self.resolve_agent(principal, &request.agent).await?.id)
        };
        let filter = UsageFilter {
            user_id,
            agent_id,
            session_id: None,
            since,
        };
        let totals = self.store.usage_summary(&filter, by).await?;
        let mut grand = pb::UsageTotal::default();
        for t in &totals {
            grand.calls += t.calls;
            grand.turns += t.turns;
            grand.input_tokens += t.usage.input_tokens;
            grand.output_tokens += t.usage.output_tokens;
            grand.cache_read_tokens += t.usage.cache_read_tokens;
            grand.cache_write_tokens += t.usage.cache_write_tokens;
            grand.cost_micros += t.cost_micros;
            grand.unpriced_calls += t.unpriced_calls;
        }
        // Agents and users partition turns, but a turn's calls may span models or days: count
        // the total's turns once, through the users' partition.
        if matches!(by, UsageGrouping::Model | UsageGrouping::Day) {
            grand.turns = self
                .store
                .usage_summary(&filter, UsageGrouping::User)
                .await?
                .iter()
                .map(|t| t.turns)
                .sum();
        }
        Ok(pb::GetUsageResponse {
            rows: totals.into_iter().map(row).collect(),
            total: Some(grand),
        })
    }
}

fn row(t: UsageTotal) -> pb::UsageTotal {
    pb::UsageTotal {
        key: t.key,
        label: t.label,
        calls: t.calls,
        turns: t.turns,
        input_tokens: t.usage.input_tokens,
        output_tokens: t.usage.output_tokens,
        cache_read_tokens: t.usage.cache_read_tokens,
        cache_write_tokens: t.usage.cache_write_tokens,
        cost_micros: t.cost_micros,
        unpriced_calls: t.unpriced_calls,
    }
}
