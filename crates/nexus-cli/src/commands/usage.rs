//! `nexus usage`: tokens and cost per model, agent, user or day.

use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use nexus_gateway::pb;

use crate::args::UsageArgs;
use crate::client::{connect, status};
use crate::output;

pub(crate) async fn run(args: UsageArgs) -> anyhow::Result<ExitCode> {
    let since = match &args.since {
        Some(text) => since(text, Utc::now())?.to_rfc3339(),
        None => String::new(),
    };
    let mut client = connect(&args.client).await?;
    let report = client
        .get_usage(pb::GetUsageRequest {
            by: args.by.clone(),
            agent: args.agent.clone().unwrap_or_default(),
            since,
            user: args.user.clone().unwrap_or_default(),
        })
        .await
        .map_err(status)?
        .into_inner();
    if args.json {
        output::json(&serde_json::to_value(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let group = match args.by.as_str() {
        "agent" => "AGENT",
        "user" => "USER",
        "day" => "DAY",
        _ => "MODEL",
    };
    let mut rows: Vec<Vec<String>> = report.rows.iter().map(|t| row(label(t), t)).collect();
    if let Some(total) = &report.total {
        rows.push(row("TOTAL".to_owned(), total));
    }
    output::table(
        &[
            group,
            "CALLS",
            "TURNS",
            "INPUT",
            "OUTPUT",
            "CACHE READ",
            "CACHE WRITE",
            "COST (USD)",
        ],
        &rows,
    );
    if report.total.as_ref().is_some_and(|t| t.unpriced_calls > 0) {
        output::line(
            "* calls of models without a known price are not in the cost; add their prices \
             under [[models]] in the configuration",
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What a row is called: the name, or the id of a deleted agent or user.
fn label(t: &pb::UsageTotal) -> String {
    if t.label.is_empty() {
        t.key.clone()
    } else {
        t.label.clone()
    }
}

fn row(name: String, t: &pb::UsageTotal) -> Vec<String> {
    let mut cost = dollars(t.cost_micros);
    if t.unpriced_calls > 0 {
        cost.push('*');
    }
    vec![
        name,
        t.calls.to_string(),
        t.turns.to_string(),
        t.input_tokens.to_string(),
        t.output_tokens.to_string(),
        t.cache_read_tokens.to_string(),
        t.cache_write_tokens.to_string(),
        cost,
    ]
}

/// Micro-dollars as dollars with four decimals (rounded half away from zero).
fn dollars(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let tenths_of_cents = (micros.unsigned_abs() + 50) / 100;
    format!(
        "{sign}{}.{:04}",
        tenths_of_cents / 10_000,
        tenths_of_cents % 10_000
    )
}

/// `--since`: a duration back from `now` (`90s`, `30m`, `24h`, `7d`, `2w`), a UTC date or an
/// RFC 3339 time.
fn since(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .filter(|&i| i > 0)
        .ok_or_else(|| bad_since(text))?;
    let (number, unit) = text.split_at(unit_at);
    let n: i64 = number.parse().map_err(|_| bad_since(text))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad_since(text)),
    };
    let back = n
        .checked_mul(seconds)
        .and_then(chrono::Duration::try_seconds)
        .ok_or_else(|| bad_since(text))?;
    now.checked_sub_signed(back).ok_or_else(|| bad_since(text))
}

fn bad_since(text: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "--since `{text}` is not a duration (30m, 24h, 7d), a date (2026-11-01) or an RFC 3339 \
         time"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[test]
    fn since_takes_durations_dates_and_times() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            since("24h", now).unwrap().to_rfc3339(),
            "2026-11-23T12:00:00+00:00"
        );
        assert_eq!(
            since("7d", now).unwrap().to_rfc3339(),
            "2026-11-17T12:00:00+00:00"
        );
        assert_eq!(
            since("30m", now).unwrap().to_rfc3339(),
            "2026-11-24T11:30:00+00:00"
        );
        assert_eq!(
            since("2026-11-01", now).unwrap().to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        assert_eq!(
            since("2026-11-02T03:04:05+01:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-02T02:04:05+00:00"
        );
        for bad in ["", "d", "7", "7y", "-3d", "99999999999999d", "yesterday"] {
            assert!(since(bad, now).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn cost_is_shown_in_dollars() {
        assert_eq!(dollars(4_455_000), "4.4550");
        assert_eq!(dollars(1_234), "0.0012");
        assert_eq!(dollars(50), "0.0001");
        assert_eq!(dollars(0), "0.0000");
        assert_eq!(dollars(-1_500), "-0.0015");
    }
}
