//! People of the web interface and their sessions (tables of `0006_web.sql`).

use sqlx::Row;

use super::{is_unique_violation, Store, StoreError};

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
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = $1");
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
             WHERE s.token_sha256 = $1 AND s.expires_at > $2"
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
}
