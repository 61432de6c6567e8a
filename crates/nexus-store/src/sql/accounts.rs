//! Both backends: users and their data keys, API keys, channel and provider credentials.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexus_core::{
    ApiKey, ApiKeyId, ChannelCredential, ChannelCredentialId, ChannelStatus, User, UserId,
};

use super::{Arg, RowsAffected, SqlDb, SqlStore};
use crate::codec::{
    self, Cols, api_key_cols, channel_credential_cols, db, provider_credential_cols, user_cols,
    write_error,
};
use crate::error::{StoreError, StoreResult};
use crate::records::ProviderCredential;
use crate::retry::retry_statement;
use crate::traits::{ApiKeyStore, CredentialStore, UserStore};

#[async_trait]
impl<S: SqlStore> UserStore for S {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        sqlx::query("INSERT INTO users (id, name, role, created_at) VALUES ($1, $2, $3, $4)")
            .arg(user.id.as_uuid())
            .arg(&user.name)
            .arg(user.role.as_str())
            .arg(S::Db::time(user.created_at))
            .execute(self.db())
            .await
            .map_err(|e| write_error("user", "user", e))?;
        Ok(())
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>> {
        sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users WHERE id = $1"
        ))
        .arg(id.as_uuid())
        .fetch_optional(self.db())
        .await
        .map_err(db)?
        .map(|r| codec::user(&r))
        .transpose()
    }

    async fn get_user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users WHERE name = $1"
        ))
        .arg(name)
        .fetch_optional(self.db())
        .await
        .map_err(db)?
        .map(|r| codec::user(&r))
        .transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users ORDER BY name"
        ))
        .fetch_all(self.db())
        .await
        .map_err(db)?
        .iter()
        .map(codec::user)
        .collect()
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(self.db())
            .await
            .map_err(db)?;
        Ok(row.int("n")?.unsigned_abs())
    }

    async fn put_user_data_key(&self, user_id: UserId, wrapped: &[u8]) -> StoreResult<Vec<u8>> {
        let now = codec::now();
        retry_statement("put_user_data_key", || {
            sqlx::query(
                "INSERT INTO user_data_keys (user_id, wrapped_key, created_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING",
            )
            .arg(user_id.as_uuid())
            .arg(wrapped)
            .arg(S::Db::time(now))
            .execute(self.db())
        })
        .await
        .map_err(|e| match e {
            StoreError::Database(e) => write_error("user data key", "user", e),
            other => other,
        })?;
        self.get_user_data_key(user_id)
            .await?
            .ok_or(StoreError::NotFound {
                what: "user data key",
            })
    }

    async fn get_user_data_key(&self, user_id: UserId) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query("SELECT wrapped_key FROM user_data_keys WHERE user_id = $1")
            .arg(user_id.as_uuid())
            .fetch_optional(self.db())
            .await
            .map_err(db)?
            .map(|r| r.bytes("wrapped_key"))
            .transpose()
    }
}

#[async_trait]
impl<S: SqlStore> ApiKeyStore for S {
    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        sqlx::query(concat!(
            "INSERT INTO api_keys (",
            api_key_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .arg(key.id.as_uuid())
        .arg(key.user_id.as_uuid())
        .arg(&key.name)
        .arg(&key.prefix)
        .arg(&key.hash)
        .arg(S::Db::time(key.created_at))
        .arg(S::Db::opt_time(key.last_used_at))
        .arg(S::Db::opt_time(key.revoked_at))
        .execute(self.db())
        .await
        .map_err(|e| write_error("api key", "user", e))?;
        Ok(())
    }

    async fn get_api_key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        sqlx::query(concat!(
            "SELECT ",
            api_key_cols!(),
            " FROM api_keys WHERE hash = $1"
        ))
        .arg(hash)
        .fetch_optional(self.db())
        .await
        .map_err(db)?
        .map(|r| codec::api_key(&r))
        .transpose()
    }

    async fn get_api_key(&self, id: ApiKeyId) -> StoreResult<Option<ApiKey>> {
        sqlx::query(concat!(
            "SELECT ",
            api_key_cols!(),
            " FROM api_keys WHERE id = $1"
        ))
        .arg(id.as_uuid())
        .fetch_optional(self.db())
        .await
        .map_err(db)?
        .map(|r| codec::api_key(&r))
        .transpose()
    }

    async fn list_api_keys(&self, user_id: Option<UserId>) -> StoreResult<Vec<ApiKey>> {
        let rows = match user_id {
            Some(user) => {
                sqlx::query(concat!(
                    "SELECT ",
                    api_key_cols!(),
                    " FROM api_keys WHERE user_id = $1 ORDER BY created_at, id"
                ))
                .arg(user.as_uuid())
                .fetch_all(self.db())
                .await
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    api_key_cols!(),
                    " FROM api_keys ORDER BY created_at, id"
                ))
                .fetch_all(self.db())
                .await
            }
        };
        rows.map_err(db)?.iter().map(codec::api_key).collect()
    }

    async fn revoke_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .arg(id.as_uuid())
                .arg(S::Db::time(at))
                .execute(self.db())
                .await
                .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> StoreResult<()> {
        let done = sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .arg(id.as_uuid())
            .arg(S::Db::time(at))
            .execute(self.db())
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "api key" });
        }
        Ok(())
    }
}

#[async_trait]
impl<S: SqlStore> CredentialStore for S {
    async fn create_channel_credential(&self, c: &ChannelCredential) -> StoreResult<()> {
        let settings = codec::json("channel credential settings", &c.settings)?;
        sqlx::query(concat!(
            "INSERT INTO channel_credentials (",
            channel_credential_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .arg(c.id.as_uuid())
        .arg(c.user_id.as_uuid())
        .arg(c.agent_id.as_uuid())
        .arg(c.kind.as_str())
        .arg(&c.name)
        .arg(settings)
        .arg(&c.sealed_secret)
        .arg(c.status.as_str())
        .arg(S::Db::time(c.created_at))
        .execute(self.db())
        .await
        .map_err(|e| write_error("channel credential", "user or agent", e))?;
        Ok(())
    }

    async fn get_channel_credential(
        &self,
        id: ChannelCredentialId,
    ) -> StoreResult<Option<ChannelCredential>> {
        sqlx::query(concat!(
            "SELECT ",
            channel_credential_cols!(),
            " FROM channel_credentials WHERE id = $1"
        ))
        .arg(id.as_uuid())
        .fetch_optional(self.db())
        .await
        .map_err(db)?
        .map(|r| codec::channel_credential(&r))
        .transpose()
    }

    async fn list_channel_credentials(
        &self,
        user_id: Option<UserId>,
    ) -> StoreResult<Vec<ChannelCredential>> {
        let rows = match user_id {
            Some(user) => {
                sqlx::query(concat!(
                    "SELECT ",
                    channel_credential_cols!(),
                    " FROM channel_credentials WHERE user_id = $1 ORDER BY name, id"
                ))
                .arg(user.as_uuid())
                .fetch_all(self.db())
                .await
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    channel_credential_cols!(),
                    " FROM channel_credentials ORDER BY name, id"
                ))
                .fetch_all(self.db())
                .await
            }
        };
        rows.map_err(db)?
            .iter()
            .map(codec::channel_credential)
            .collect()
    }

    async fn set_channel_status(
        &self,
        id: ChannelCredentialId,
        status: ChannelStatus,
    ) -> StoreResult<()> {
        let done = sqlx::query("UPDATE channel_credentials SET status = $2 WHERE id = $1")
            .arg(id.as_uuid())
            .arg(status.as_str())
            .execute(self.db())
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "channel credential",
            });
        }
        Ok(())
    }

    async fn delete_channel_credential(&self, id: ChannelCredentialId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM channel_credentials WHERE id = $1")
            .arg(id.as_uuid())
            .execute(self.db())
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn put_provider_credential(&self, c: &ProviderCredential) -> StoreResult<()> {
        // A replacement takes the new id too: the sealed key is bound to it.
        sqlx::query(concat!(
            "INSERT INTO provider_credentials (",
            provider_credential_cols!(),
            ") VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, provider) DO UPDATE SET id = excluded.id, \
             sealed_secret = excluded.sealed_secret, created_at = excluded.created_at"
        ))
        .arg(c.id)
        .arg(c.user_id.as_uuid())
        .arg(&c.provider)
        .arg(&c.sealed_secret)
        .arg(S::Db::time(c.created_at))
        .execute(self.db())
        .await
        .map_err(|e| write_error("provider credential", "user", e))?;
        Ok(())
    }

    async fn get_provider_credential(
        &self,
        user_id: UserId,
        provider: &str,
    ) -> StoreResult<Option<ProviderCredential>> {
        sqlx::query(concat!(
            "SELECT ",
            provider_credential_cols!(),
            " FROM provider_credentials WHERE user_id = $1 AND provider = $2"
        ))
        .arg(user_id.as_uuid())
        .arg(provider)
        .fetch_optional(self.db())
        .await
        .map_err(db)?
        .map(|r| codec::provider_credential(&r))
        .transpose()
    }

    async fn list_provider_credentials(
        &self,
        user_id: UserId,
    ) -> StoreResult<Vec<ProviderCredential>> {
        sqlx::query(concat!(
            "SELECT ",
            provider_credential_cols!(),
            " FROM provider_credentials WHERE user_id = $1 ORDER BY provider"
        ))
        .arg(user_id.as_uuid())
        .fetch_all(self.db())
        .await
        .map_err(db)?
        .iter()
        .map(codec::provider_credential)
        .collect()
    }

    async fn delete_provider_credential(
        &self,
        user_id: UserId,
        provider: &str,
    ) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM provider_credentials WHERE user_id = $1 AND provider = $2")
                .arg(user_id.as_uuid())
                .arg(provider)
                .execute(self.db())
                .await
                .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }
}
