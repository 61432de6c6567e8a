//! The storage conformance suite: one set of behaviours every backend must show, run on
//! SQLite and PostgreSQL by [`store_conformance_tests!`](crate::store_conformance_tests).
//!
//! Each behaviour is a `pub async fn(&Harness)`; the macro turns the list into one
//! `#[tokio::test]` per behaviour, so a failure names what broke. [`Harness`] gives each test a
//! database of its own (a temporary SQLite file, or a fresh PostgreSQL database), which keeps
//! tests independent and lets them run in parallel. Test code only: it panics on failure.

// Test code: a failed expectation panics, like in any test.
#![allow(clippy::unwrap_used)]

mod accounts;
mod channels;
mod sessions;
mod turns;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nexus_core::{
    Agent, ChannelKind, DEFAULT_MAX_STEPS, Direction, Message, Role, Session, User, UserId,
    UserRole,
};
use sqlx::{PgPool, SqlitePool};

pub use accounts::*;
pub use channels::*;
pub use sessions::*;
pub use turns::*;

use crate::postgres::PostgresStore;
use crate::records::{DedupeKey, NewInbound};
use crate::sqlite::SqliteStore;
use crate::{OpenOptions, Store};

/// The environment variable naming the PostgreSQL server the suite runs against.
pub const POSTGRES_URL_ENV: &str = "NEXUS_TEST_POSTGRES_URL";

/// Generates one `#[tokio::test]` per conformance behaviour. `$harness` is an expression of
/// type `impl Future<Output = Option<Harness>>`; `None` skips the test (no database).
#[macro_export]
macro_rules! store_conformance_tests {
    ($harness:expr) => {
        $crate::store_conformance_tests!(@each $harness;
            // users, keys, credentials
            user_round_trips_by_id_and_name,
            user_name_taken_is_a_conflict,
            users_are_listed_by_name_and_counted,
            user_data_key_first_writer_wins,
            user_data_key_of_missing_user_is_not_found,
            api_key_is_found_by_hash_and_listed_oldest_first,
            api_key_hash_taken_is_a_conflict,
            revoked_key_still_readable_with_revoked_at,
            touch_api_key_records_last_use,
            channel_credential_round_trips_and_status_changes,
            channel_credential_name_conflict_per_user,
            provider_credential_put_replaces_and_delete_removes,
            // agents and sessions
            agent_round_trips_every_field,
            agent_name_conflict_per_owner,
            update_agent_replaces_fields_and_reports_missing_and_taken_names,
            delete_agent_removes_its_sessions,
            session_is_found_by_scope_and_same_scope_conflicts,
            session_for_missing_agent_is_not_found,
            sessions_are_listed_most_recent_first_with_filters_and_limit,
            // inbox, turns, outbox, usage, leases
            enqueue_assigns_consecutive_seq_and_touches_session,
            enqueue_with_same_dedupe_key_is_duplicate_and_writes_nothing,
            enqueue_into_missing_session_is_not_found_and_writes_nothing,
            concurrent_enqueues_get_consecutive_seq_numbers,
            concurrent_duplicate_enqueues_commit_once,
            message_round_trips_tool_calls_attachments_and_metadata,
            list_messages_pages_after_seq_and_recent_messages_returns_the_tail,
            pending_inbox_is_in_message_order_and_lists_sessions_with_pending,
            begin_attempt_counts_attempts,
            complete_turn_commits_messages_usage_and_delivery,
            complete_turn_twice_commits_once,
            concurrent_complete_turns_commit_once,
            complete_turn_after_fail_turn_writes_nothing,
            fail_turn_records_the_error_once,
            completing_an_unknown_turn_is_not_found,
            pending_deliveries_are_per_channel_oldest_first,
            update_delivery_keeps_platform_id_and_counts_attempts,
            usage_is_filtered_by_user_agent_session_and_time,
            usage_is_summed_per_model_agent_user_and_day,
            lease_is_exclusive_until_expiry,
            lease_is_renewed_by_its_holder_and_freed_by_release,
            concurrent_lease_acquisitions_have_one_winner,
            // channels at run time
            channel_health_is_replaced_by_the_latest_report,
            channel_settings_are_replaced,
            pairing_codes_are_offered_kept_replaced_and_approved_once,
            channel_reply_ids_round_trip_per_turn,
            retired_session_frees_its_scope_and_keeps_history,
            // the store itself
            migration_status_is_current_after_migrate,
            ping_answers_and_backend_is_named,
            corrupt_enum_is_an_error_not_a_panic,
            corrupt_json_is_an_error_not_a_panic,
        );
    };
    (@each $harness:expr; $($test:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let Some(harness) = $harness.await else { return };
                $crate::testing::$test(&harness).await;
                harness.cleanup().await;
            }
        )+
    };
}

/// A store on a database of its own, plus raw SQL access for tests that must write what the
/// store never would (corrupt rows).
#[derive(Debug)]
pub struct Harness {
    /// The store under test.
    pub store: Arc<dyn Store>,
    raw: Raw,
}

#[derive(Debug)]
enum Raw {
    Sqlite {
        pool: SqlitePool,
        _dir: tempfile::TempDir,
    },
    Postgres {
        pool: PgPool,
        admin_url: String,
        database: String,
    },
}

impl Harness {
    /// A migrated SQLite database in a temporary directory.
    pub async fn sqlite() -> Option<Harness> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("nexus.db").display());
        let store = SqliteStore::connect(&url, &OpenOptions::default())
            .await
            .expect("open SQLite store");
        Some(Harness {
            raw: Raw::Sqlite {
                pool: store.pool().clone(),
                _dir: dir,
            },
            store: Arc::new(store),
        })
    }

    /// A fresh, migrated database on the server [`POSTGRES_URL_ENV`] names. Without it: `None`
    /// (the test is skipped with a notice), or a panic when `CI=true`, where a missing service
    /// is a failure.
    pub async fn postgres() -> Option<Harness> {
        let Some(admin_url) = std::env::var(POSTGRES_URL_ENV)
            .ok()
            .filter(|u| !u.is_empty())
        else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{POSTGRES_URL_ENV} is not set and CI=true: start PostgreSQL with \
                     `eval \"$(scripts/services/postgres.sh)\"`"
                );
            }
            eprintln!(
                "skipped: {POSTGRES_URL_ENV} is not set (start PostgreSQL with \
                 `eval \"$(scripts/services/postgres.sh)\"`)"
            );
            return None;
        };
        let database = format!("nexus_test_{}", uuid::Uuid::new_v4().simple());
        let admin = PgPool::connect(&admin_url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("PostgreSQL URL");
        url.set_path(&database);
        let options = OpenOptions {
            max_connections: 8,
            migrate: true,
        };
        let store = PostgresStore::connect(url.as_str(), &options)
            .await
            .expect("open PostgreSQL store");
        Some(Harness {
            raw: Raw::Postgres {
                pool: store.pool().clone(),
                admin_url,
                database,
            },
            store: Arc::new(store),
        })
    }

    /// Runs SQL directly on the database, bypassing the store.
    pub async fn execute(&self, sql: &'static str) {
        match &self.raw {
            Raw::Sqlite { pool, .. } => sqlx::query(sql).execute(pool).await.map(|_| ()),
            Raw::Postgres { pool, .. } => sqlx::query(sql).execute(pool).await.map(|_| ()),
        }
        .expect("raw SQL");
    }

    /// Closes the store and removes the database.
    pub async fn cleanup(self) {
        self.store.close().await;
        match self.raw {
            Raw::Sqlite { .. } => {}
            Raw::Postgres {
                pool,
                admin_url,
                database,
            } => {
                pool.close().await;
                if let Ok(admin) = PgPool::connect(&admin_url).await {
                    let drop = format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&admin).await;
                    admin.close().await;
                }
            }
        }
    }
}

/// Now, at the precision stores keep (microseconds), so written values compare equal.
pub fn now() -> DateTime<Utc> {
    crate::codec::now()
}

/// A user with a unique name starting with `name`.
pub fn new_user(name: &str) -> User {
    User {
        id: UserId::new(),
        name: format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        role: UserRole::User,
        created_at: now(),
    }
}

/// An agent of `owner` named `name`, with every optional field set.
pub fn new_agent(owner: UserId, name: &str) -> Agent {
    Agent {
        id: nexus_core::AgentId::new(),
        owner_id: owner,
        name: name.to_owned(),
        description: "Answers questions".to_owned(),
        system_prompt: "You are helpful.".to_owned(),
        model: "openai/gpt-4o-mini".to_owned(),
        fallback_models: vec!["anthropic/claude-3-5-haiku".to_owned()],
        tools: vec!["web_search".to_owned(), "code".to_owned()],
        tool_policy: nexus_core::ToolPolicy { network: true },
        max_steps: DEFAULT_MAX_STEPS,
        max_output_tokens: Some(1024),
        temperature: Some(0.25),
        created_at: now(),
        updated_at: now(),
    }
}

/// A session of `user` with `agent` on `channel` in `scope`.
pub fn new_session(user: &User, agent: &Agent, channel: ChannelKind, scope: &str) -> Session {
    Session {
        id: nexus_core::SessionId::new(),
        user_id: user.id,
        agent_id: agent.id,
        channel,
        scope: scope.to_owned(),
        title: "A chat".to_owned(),
        created_at: now(),
        updated_at: now(),
    }
}

/// A user, one of their agents and a Telegram session between them, stored.
#[derive(Debug, Clone)]
pub struct World {
    /// The user.
    pub user: User,
    /// Their agent.
    pub agent: Agent,
    /// Their session.
    pub session: Session,
}

/// Stores a fresh [`World`].
pub async fn world(store: &dyn Store) -> World {
    let user = new_user("alice");
    store.create_user(&user).await.expect("create user");
    let agent = new_agent(user.id, "helper");
    store.create_agent(&agent).await.expect("create agent");
    let session = new_session(&user, &agent, ChannelKind::Telegram, "chat-1");
    store
        .create_session(&session)
        .await
        .expect("create session");
    World {
        user,
        agent,
        session,
    }
}

/// A user message for `session`, deduplicated on `external_id` when given.
pub fn inbound(session: &Session, text: &str, external_id: Option<&str>) -> NewInbound {
    let mut message = Message::new(
        session.id,
        session.channel,
        Direction::Inbound,
        Role::User,
        text,
    );
    message.created_at = now();
    NewInbound {
        message,
        dedupe: external_id.map(|id| DedupeKey {
            channel: session.channel,
            account: "bot-1".to_owned(),
            external_id: id.to_owned(),
        }),
    }
}

/// An assistant reply in `session`.
pub fn reply(session: &Session, text: &str) -> Message {
    let mut message = Message::new(
        session.id,
        session.channel,
        Direction::Outbound,
        Role::Assistant,
        text,
    );
    message.created_at = now();
    message
}
