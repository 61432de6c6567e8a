//! Retry of transactions that lost a race: PostgreSQL/CockroachDB serialization failures
//! (SQLSTATE 40001) and deadlocks (40P01), and SQLite's BUSY/LOCKED. The whole transaction is
//! run again — begin, statements, commit — a bounded number of times with a small jittered
//! backoff. Must never retry anything else: a constraint violation or a lost connection is the
//! caller's to see.

use std::future::Future;
use std::time::Duration;

use crate::error::{StoreError, StoreResult};

/// How many times a transaction is run before its last error is returned.
pub(crate) const MAX_ATTEMPTS: u32 = 8;

/// The first backoff; doubled per attempt up to [`MAX_BACKOFF`], then jittered to 50–100 %.
const BASE_BACKOFF: Duration = Duration::from_millis(2);
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// Runs `attempt` (one whole transaction) until it succeeds, fails for a reason a retry cannot
/// fix, or [`MAX_ATTEMPTS`] runs are used up.
pub(crate) async fn with_retry<T, F, Fut>(op: &'static str, mut attempt: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    let mut n = 1;
    loop {
        match attempt().await {
            Err(err) if n < MAX_ATTEMPTS && is_transient(&err) => {
                let wait = backoff(n);
                tracing::debug!(op, attempt = n, ?wait, error = %err, "Retrying transaction");
                tokio::time::sleep(wait).await;
                n += 1;
            }
            other => return other,
        }
    }
}

/// [`with_retry`] for one statement (an implicit transaction), such as an upsert that races
/// with other replicas.
pub(crate) async fn retry_statement<T, F, Fut>(op: &'static str, mut statement: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    with_retry(op, || {
        let run = statement();
        async move { run.await.map_err(StoreError::Database) }
    })
    .await
}

/// Whether running the transaction again may succeed.
pub(crate) fn is_transient(err: &StoreError) -> bool {
    match err {
        StoreError::Database(sqlx::Error::Database(db)) => {
            db.code().is_some_and(|code| is_transient_code(&code))
        }
        StoreError::Database(_)
        | StoreError::NotFound { .. }
        | StoreError::Conflict { .. }
        | StoreError::Corrupt { .. }
        | StoreError::Config(_)
        | StoreError::Migration(_)
        | StoreError::Blob(_)
        | StoreError::TooLarge { .. } => false,
    }
}

/// PostgreSQL reports a five-character SQLSTATE; SQLite an extended result code as a number,
/// whose low byte is the primary code (5 BUSY, 6 LOCKED, with their extended variants).
fn is_transient_code(code: &str) -> bool {
    match code {
        "40001" | "40P01" => true,
        numeric => numeric
            .parse::<i32>()
            .is_ok_and(|c| matches!(c & 0xff, 5 | 6)),
    }
}

fn backoff(attempt: u32) -> Duration {
    let exp = BASE_BACKOFF.saturating_mul(1 << attempt.min(16));
    let cap = exp.min(MAX_BACKOFF);
    cap.mul_f64(rand::random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn serialization_failures_deadlocks_and_sqlite_busy_are_transient() {
        for code in ["40001", "40P01", "5", "6", "261", "517", "262"] {
            assert!(is_transient_code(code), "{code}");
        }
        for code in ["23505", "23503", "19", "2067", "787", "42P01"] {
            assert!(!is_transient_code(code), "{code}");
        }
    }

    #[test]
    fn backoff_is_bounded() {
        for n in 1..=MAX_ATTEMPTS + 5 {
            assert!(backoff(n) <= MAX_BACKOFF);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn non_transient_errors_are_returned_at_once() {
        let calls = AtomicU32::new(0);
        let result: StoreResult<()> = with_retry("test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::Conflict { what: "thing" })
        })
        .await;
        assert!(matches!(result, Err(StoreError::Conflict { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
