//! People of the web interface and their sessions (tables of `0006_web.sql`).

use sqlx::Row;

use super::{append_log, is_unique_violation, Store, StoreError};
use crate::xlog::PreparedLeaf;

/// A user as stored (the password hash never leaves `web::auth`).
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub agency_id: Option<String>,
    pub region: Option<String>,
    pub email: Option<String>,
    pub failed_logins: i64,
    pub locked_until_ms: Option<i64>,
}

const USER_COLUMNS: &str = "u.id, u.username, u.password_hash, u.role, u.agency_id, u.region, \
                            u.email, u.failed_logins, u.locked_until";

fn user_of(r: &sqlx::any::AnyRow) -> UserRecord {
    UserRecord {
        id: r.get(0),
        username: r.get(1),
        password_hash: r.get(2),
        role: r.get(3),
        agency_id: r.get(4),
        region: r.get(5),
        email: r.get(6),
        failed_logins: r.get(7),
        locked_until_ms: r.get(8),
    }
}

impl Store {
    /// Adds a user; `false` when the username is taken.
    pub async fn create_user(&self, user: &UserRecord, now_ms: i64) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO users (id, username, password_hash, role, agency_id, region, email, \
             failed_logins, locked_until, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, NULL, $8)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.role)
        .bind(&user.agency_id)
        .bind(&user.region)
        .bind(&user.email)
        .bind(now_ms)
        .execute(&self.writer)
        .await;
        if is_unique_violation(&inserted) {
            return Ok(false);
        }
        inserted?;
        Ok(true)
    }

    pub async fn user_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&self.reader)
            .await?;
        Ok(row.get(0))
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        // A disabled account is as good as none for logging in.
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.username = $1 AND u.disabled_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(&self.writer)
            .await?;
        Ok(row.as_ref().map(user_of))
    }

    /// Counts a failed login; from the `max`-th consecutive failure on, the
    /// account is locked until `now + lock_ms`. Returns the failures so far.
    pub async fn login_failed(
        &self,
        user_id: &str,
        now_ms: i64,
        max: i64,
        lock_ms: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "UPDATE users SET failed_logins = failed_logins + 1, \
             locked_until = CASE WHEN failed_logins + 1 >= $1 THEN $2 ELSE locked_until END \
             WHERE id = $3 RETURNING failed_logins",
        )
        .bind(max)
        .bind(now_ms + lock_ms)
        .bind(user_id)
        .fetch_one(&self.writer)
        .await?;
        Ok(row.get(0))
    }

    /// A successful login: the failure count starts again, and a session is opened.
    pub async fn login_succeeded(
        &self,
        user_id: &str,
        token_sha256: &str,
        csrf_token: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        use sqlx::Connection;
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_sha256, user_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_sha256)
        .bind(user_id)
        .bind(csrf_token)
        .bind(now_ms)
        .bind(expires_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user and CSRF token of a live session.
    pub async fn session(
        &self,
        token_sha256: &str,
        now_ms: i64,
    ) -> Result<Option<(UserRecord, String)>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_sha256 = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(token_sha256)
            .bind(now_ms)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| (user_of(&r), r.get(9))))
    }

    pub async fn end_session(&self, token_sha256: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_sha256 = $1")
            .bind(token_sha256)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Every user, by user name, for the admin's list.
    pub async fn users(&self) -> Result<Vec<UserListing>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, u.created_at, u.disabled_at FROM users u ORDER BY u.username"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
        Ok(rows.iter().map(listing_of).collect())
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserListing>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, u.created_at, u.disabled_at FROM users u WHERE u.id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.writer)
            .await?;
        Ok(row.as_ref().map(listing_of))
    }

    /// An admin's change to a user, with its exchange-log entry, in one
    /// transaction. `Ok(false)`: nothing changed (the user name is taken,
    /// or no such user), nothing logged.
    pub async fn administer_user(
        &self,
        change: &UserChange<'_>,
        now_ms: i64,
        leaf: &PreparedLeaf,
    ) -> Result<bool, StoreError> {
        use sqlx::Connection;
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let (changed, end_sessions) = match change {
            UserChange::Create(user) => {
                let inserted = sqlx::query(
                    "INSERT INTO users (id, username, password_hash, role, agency_id, region, email, \
                     failed_logins, locked_until, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, NULL, $8)",
                )
                .bind(&user.id)
                .bind(&user.username)
                .bind(&user.password_hash)
                .bind(&user.role)
                .bind(&user.agency_id)
                .bind(&user.region)
                .bind(&user.email)
                .bind(now_ms)
                .execute(&mut *tx)
                .await;
                if is_unique_violation(&inserted) {
                    tx.rollback().await?;
                    return Ok(false);
                }
                (inserted?.rows_affected(), None)
            }
            UserChange::SetPassword { user_id, hash } => (
                sqlx::query(
                    "UPDATE users SET password_hash = $1, failed_logins = 0, locked_until = NULL \
                     WHERE id = $2",
                )
                .bind(*hash)
                .bind(*user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                Some(*user_id),
            ),
            UserChange::Unlock { user_id } => (
                sqlx::query(
                    "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1",
                )
                .bind(*user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                None,
            ),
            UserChange::Disable { user_id } => (
                sqlx::query(
                    "UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL",
                )
                .bind(now_ms)
                .bind(*user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                Some(*user_id),
            ),
            UserChange::Enable { user_id } => (
                sqlx::query(
                    "UPDATE users SET disabled_at = NULL, failed_logins = 0, locked_until = NULL \
                     WHERE id = $1 AND disabled_at IS NOT NULL",
                )
                .bind(*user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                None,
            ),
        };
        if changed != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(user_id) = end_sessions {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        append_log(&mut tx, leaf).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// A user with what only the admin's list shows.
#[derive(Debug, Clone)]
pub struct UserListing {
    pub user: UserRecord,
    pub created_at_ms: i64,
    /// Set when an admin disabled the account.
    pub disabled_at_ms: Option<i64>,
}

fn listing_of(r: &sqlx::any::AnyRow) -> UserListing {
    UserListing {
        user: user_of(r),
        created_at_ms: r.get(9),
        disabled_at_ms: r.get(10),
    }
}

/// What an admin does to a user ([`Store::administer_user`]). A new
/// password or a disabled account ends the user's sessions.
#[derive(Debug)]
pub enum UserChange<'a> {
    Create(&'a UserRecord),
    SetPassword { user_id: &'a str, hash: &'a str },
    Unlock { user_id: &'a str },
    Disable { user_id: &'a str },
    Enable { user_id: &'a str },
}
