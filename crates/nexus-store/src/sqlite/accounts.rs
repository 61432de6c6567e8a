//! SQLite: users and their data keys, API keys, channel and provider credentials.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexus_core::{
    ApiKey, ApiKeyId, ChannelCredential, ChannelCredentialId, ChannelStatus, User, UserId,
};

use super::{SqliteStore, us};
use crate::codec::{
    self, api_key_cols, channel_credential_cols, db, provider_credential_cols, user_cols,
    write_error,
};
use crate::error::{StoreError, StoreResult};
use crate::records::ProviderCredential;
use crate::retry::retry_statement;
use crate::traits::{ApiKeyStore, CredentialStore, UserStore};

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        sqlx::query("INSERT INTO users (id, name, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(user.id.as_uuid())
            .bind(&user.name)
            .bind(user.role.as_str())
            .bind(us(user.created_at))
            .execute(&self.pool)
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
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
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
        .bind(name)
        .fetch_optional(&self.pool)
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
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(codec::user)
        .collect()
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(n.unsigned_abs())
    }

    async fn put_user_data_key(&self, user_id: UserId, wrapped: &[u8]) -> StoreResult<Vec<u8>> {
        let now = codec::now();
        retry_statement("put_user_data_key", || {
            sqlx::query(
                "INSERT INTO user_data_keys (user_id, wrapped_key, created_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(user_id.as_uuid())
            .bind(wrapped)
            .bind(us(now))
            .execute(&self.pool)
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
        sqlx::query_scalar("SELECT wrapped_key FROM user_data_keys WHERE user_id = $1")
            .bind(user_id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }
}

#[async_trait]
impl ApiKeyStore for SqliteStore {
    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        sqlx::query(concat!(
            "INSERT INTO api_keys (",
            api_key_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(key.id.as_uuid())
        .bind(key.user_id.as_uuid())
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.hash)
        .bind(us(key.created_at))
        .bind(key.last_used_at.map(us))
        .bind(key.revoked_at.map(us))
        .execute(&self.pool)
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
        .bind(hash)
        .fetch_optional(&self.pool)
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
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
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
                .bind(user.as_uuid())
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    api_key_cols!(),
                    " FROM api_keys ORDER BY created_at, id"
                ))
                .fetch_all(&self.pool)
                .await
            }
        };
        rows.map_err(db)?.iter().map(codec::api_key).collect()
    }

    async fn revoke_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id.as_uuid())
                .bind(us(at))
                .execute(&self.pool)
                .await
                .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> StoreResult<()> {
        let done = sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id.as_uuid())
            .bind(us(at))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "api key" });
        }
        Ok(())
    }
}

#[async_trait]
impl CredentialStore for SqliteStore {
    async fn create_channel_credential(&self, c: &ChannelCredential) -> StoreResult<()> {
        let settings = codec::json("channel credential settings", &c.settings)?;
        sqlx::query(concat!(
            "INSERT INTO channel_credentials (",
            channel_credential_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(c.id.as_uuid())
        .bind(c.user_id.as_uuid())
        .bind(c.agent_id.as_uuid())
        .bind(c.kind.as_str())
        .bind(&c.name)
        .bind(settings)
        .bind(&c.sealed_secret)
        .bind(c.status.as_str())
        .bind(us(c.created_at))
        .execute(&self.pool)
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
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
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
                .bind(user.as_uuid())
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    channel_credential_cols!(),
                    " FROM channel_credentials ORDER BY name, id"
                ))
                .fetch_all(&self.pool)
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
            .bind(id.as_uuid())
            .bind(status.as_str())
            .execute(&self.pool)
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
            .bind(id.as_uuid())
            .execute(&self.pool)
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
        .bind(c.id)
        .bind(c.user_id.as_uuid())
        .bind(&c.provider)
        .bind(&c.sealed_secret)
        .bind(us(c.created_at))
        .execute(&self.pool)
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
        .bind(user_id.as_uuid())
        .bind(provider)
        .fetch_optional(&self.pool)
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
        .bind(user_id.as_uuid())
        .fetch_all(&self.pool)
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
                .bind(user_id.as_uuid())
                .bind(provider)
                .execute(&self.pool)
                .await
                .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }
}
