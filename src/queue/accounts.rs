//! Accounts: who the merchant is on a portal, the stores it feeds, and its sealed secrets.

use secrecy::{ExposeSecret, SecretString};
use sqlx::{Any, Row};
use zeroize::Zeroizing;

use super::rows::ACCOUNT_COLUMNS;
use super::{
    new_id, secrets_context, Account, AccountSecrets, AccountUpdate, NewAccount, Queue, QueueError,
};
use crate::codes::MailboxConfig;
use crate::secret::Credentials;

impl Queue {
    pub async fn create_account(&self, new: NewAccount) -> Result<Account, QueueError> {
        let id = new_id();
        let now = self.clock.now_ms();
        let secrets = self.seal_secrets(&id, &new.secrets);
        sqlx::query(
            "INSERT INTO accounts (id, organisation, provider, secrets, key_id, credentials_version, \
             stores, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $7)",
        )
        .bind(&id)
        .bind(&new.organisation)
        .bind(&new.provider)
        .bind(secrets)
        .bind(&self.keys.current.id)
        .bind(serde_json::to_string(&new.stores).expect("stores serialise"))
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.account(&new.organisation, &id)
            .await?
            .ok_or(QueueError::UnknownAccount(id))
    }

    /// Applies an update; new credentials bump the credentials version, which lifts the block a
    /// rejected password put on automatic logins.
    pub async fn update_account(
        &self,
        organisation: &str,
        id: &str,
        update: AccountUpdate,
    ) -> Result<Account, QueueError> {
        let mut conn = self.pool.acquire().await?;
        self.update_account_on(&mut conn, organisation, id, update)
            .await?;
        drop(conn); // SQLite's pool holds one connection
        self.account(organisation, id)
            .await?
            .ok_or_else(|| QueueError::UnknownAccount(id.to_string()))
    }

    /// [`Queue::update_account`] on a connection (inside the caller's transaction).
    pub(super) async fn update_account_on(
        &self,
        conn: &mut sqlx::AnyConnection,
        organisation: &str,
        id: &str,
        update: AccountUpdate,
    ) -> Result<(), QueueError> {
        let unknown = || QueueError::UnknownAccount(id.to_string());
        let mut secrets = self
            .secrets_on(&mut *conn, organisation, id)
            .await?
            .ok_or_else(unknown)?;
        let new_credentials = update.credentials.is_some();
        if let Some(credentials) = update.credentials {
            secrets.credentials = credentials;
        }
        if let Some(totp) = update.totp {
            secrets.totp = totp;
        }
        if let Some(mailbox) = update.mailbox {
            secrets.mailbox = mailbox;
        }
        let stores = update
            .stores
            .map(|stores| serde_json::to_string(&stores).expect("stores serialise"));
        let done = sqlx::query(
            "UPDATE accounts SET secrets = $1, key_id = $2, \
             credentials_version = credentials_version + $3, \
             stores = COALESCE($4, stores), updated_at = $5 \
             WHERE id = $6 AND organisation = $7",
        )
        .bind(self.seal_secrets(id, &secrets))
        .bind(&self.keys.current.id)
        .bind(i64::from(new_credentials))
        .bind(stores)
        .bind(self.clock.now_ms())
        .bind(id)
        .bind(organisation)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 0 {
            return Err(unknown());
        }
        Ok(())
    }

    /// Deletes the account, its jobs, codes and history: the ciphertext is gone with the row.
    pub async fn delete_account(&self, organisation: &str, id: &str) -> Result<bool, QueueError> {
        let done = sqlx::query("DELETE FROM accounts WHERE id = $1 AND organisation = $2")
            .bind(id)
            .bind(organisation)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn account(
        &self,
        organisation: &str,
        id: &str,
    ) -> Result<Option<Account>, QueueError> {
        self.account_on(&self.pool, organisation, id).await
    }

    pub(super) async fn account_on<'c>(
        &self,
        executor: impl sqlx::Executor<'c, Database = Any>,
        organisation: &str,
        id: &str,
    ) -> Result<Option<Account>, QueueError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1 AND organisation = $2"
        ))
        .bind(id)
        .bind(organisation)
        .fetch_optional(executor)
        .await?;
        row.map(|row| self.account_from_row(&row)).transpose()
    }

    pub async fn accounts(&self, organisation: &str) -> Result<Vec<Account>, QueueError> {
        sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE organisation = $1 ORDER BY created_at, id"
        ))
        .bind(organisation)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| self.account_from_row(row))
        .collect()
    }

    /// Decrypts an account's secrets for the one job that needs them.
    pub async fn account_secrets(&self, id: &str) -> Result<Option<AccountSecrets>, QueueError> {
        let Some(row) = sqlx::query("SELECT secrets, key_id FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        self.open_secrets(id, &row).map(Some)
    }

    async fn secrets_on(
        &self,
        conn: &mut sqlx::AnyConnection,
        organisation: &str,
        id: &str,
    ) -> Result<Option<AccountSecrets>, QueueError> {
        let row =
            sqlx::query("SELECT secrets, key_id FROM accounts WHERE id = $1 AND organisation = $2")
                .bind(id)
                .bind(organisation)
                .fetch_optional(&mut *conn)
                .await?;
        row.map(|row| self.open_secrets(id, &row)).transpose()
    }

    fn open_secrets(
        &self,
        id: &str,
        row: &sqlx::any::AnyRow,
    ) -> Result<AccountSecrets, QueueError> {
        let plain = self.keys.open(
            &row.get::<String, _>(1),
            &row.get::<String, _>(0),
            &secrets_context(id),
        )?;
        let stored: StoredSecrets = serde_json::from_slice(&plain)
            .map_err(|e| QueueError::Corrupt(format!("account secrets: {e}")))?;
        Ok(stored.into_secrets())
    }

    fn seal_secrets(&self, id: &str, secrets: &AccountSecrets) -> String {
        let stored = StoredSecrets::from_secrets(secrets);
        let plain = Zeroizing::new(serde_json::to_vec(&stored).expect("secrets serialise"));
        self.keys.current.seal(&plain, &secrets_context(id))
    }
}

/// The secrets as sealed: a plain serde shape, zeroed when dropped.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSecrets {
    username: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
    #[serde(default)]
    mailbox: Option<StoredMailbox>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredMailbox {
    host: String,
    port: u16,
    username: String,
    password: String,
    ca_file: Option<std::path::PathBuf>,
    folder: String,
}

impl Drop for StoredSecrets {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.username.zeroize();
        self.password.zeroize();
        self.totp.zeroize();
        if let Some(mailbox) = &mut self.mailbox {
            mailbox.username.zeroize();
            mailbox.password.zeroize();
        }
    }
}

impl StoredSecrets {
    fn from_secrets(secrets: &AccountSecrets) -> StoredSecrets {
        StoredSecrets {
            username: secrets.credentials.username.clone(),
            password: secrets.credentials.password.expose_secret().to_string(),
            totp: secrets.totp.as_ref().map(|t| t.expose_secret().to_string()),
            mailbox: secrets.mailbox.as_ref().map(|m| StoredMailbox {
                host: m.host.clone(),
                port: m.port,
                username: m.username.clone(),
                password: m.password.expose_secret().to_string(),
                ca_file: m.ca_file.clone(),
                folder: m.folder.clone(),
            }),
        }
    }

    fn into_secrets(self) -> AccountSecrets {
        AccountSecrets {
            credentials: Credentials {
                username: self.username.clone(),
                password: SecretString::from(self.password.clone()),
            },
            totp: self.totp.clone().map(SecretString::from),
            mailbox: self.mailbox.as_ref().map(|m| MailboxConfig {
                host: m.host.clone(),
                port: m.port,
                username: m.username.clone(),
                password: SecretString::from(m.password.clone()),
                ca_file: m.ca_file.clone(),
                folder: m.folder.clone(),
            }),
        }
    }
}
