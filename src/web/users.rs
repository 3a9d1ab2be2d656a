//! Creating web users (CLI `users add`, the dev seed). Partner systems are
//! not users: they are agencies in the registry with certificates.

use std::path::PathBuf;

use super::auth::{hash_password, random_token, ROLES};
use crate::app::Gateway;
use crate::store::{StoreError, UserRecord};
use crate::timefmt::unix_ms;

/// Shortest password accepted for a person (NIST SP 800-63B asks for 8; we ask for 12).
pub const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unknown role {0:?} (expected clerk, supervisor, auditor or admin)")]
    UnknownRole(String),
    #[error("a clerk needs --agency, an agency id of the registry")]
    ClerkWithoutAgency,
    #[error("agency {0} is not in the registry")]
    UnknownAgency(String),
    #[error("a supervisor needs --region, a division code prefix such as 62 or 6201")]
    SupervisorWithoutRegion,
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    #[error("user name {0:?} is taken")]
    Taken(String),
    #[error("user names are 3–64 letters, digits, '.', '-' or '_'")]
    BadUsername,
    #[error("hashing the password failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: String,
    pub agency: Option<String>,
    pub region: Option<String>,
    pub email: Option<String>,
}

/// Checks and stores a new user.
pub async fn add(gw: &Gateway, new: NewUser) -> Result<(), UserError> {
    let record = record(gw, new)?;
    if !gw
        .store
        .create_user(&record, unix_ms(gw.clock.now()))
        .await?
    {
        return Err(UserError::Taken(record.username));
    }
    Ok(())
}

/// Checks a new user and hashes the password: the row to store (the CLI's
/// `users add` and the admin's form store it).
pub fn record(gw: &Gateway, new: NewUser) -> Result<UserRecord, UserError> {
    let NewUser {
        username,
        password,
        role,
        agency,
        region,
        email,
    } = new;
    if !(3..=64).contains(&username.len())
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(UserError::BadUsername);
    }
    if !ROLES.contains(&role.as_str()) {
        return Err(UserError::UnknownRole(role));
    }
    match (role.as_str(), &agency, &region) {
        ("clerk", None, _) => return Err(UserError::ClerkWithoutAgency),
        ("clerk", Some(a), _) if gw.registry.get(a).is_none() => {
            return Err(UserError::UnknownAgency(a.clone()))
        }
        ("supervisor", _, None) => return Err(UserError::SupervisorWithoutRegion),
        ("supervisor", _, Some(r))
            if r.is_empty() || r.len() > 6 || !r.chars().all(|c| c.is_ascii_digit()) =>
        {
            return Err(UserError::SupervisorWithoutRegion)
        }
        _ => {}
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(UserError::WeakPassword);
    }
    let password_hash = hash_password(&password).map_err(|e| UserError::Hash(e.to_string()))?;
    let record = UserRecord {
        id: uuid::Uuid::now_v7().to_string(),
        username: username.clone(),
        password_hash,
        role,
        agency_id: agency,
        region,
        email,
        failed_logins: 0,
        locked_until_ms: None,
    };
    Ok(record)
}

impl UserError {
    /// The problem in both languages, for the admin's pages.
    pub fn bilingual(&self) -> (String, String) {
        let zh = match self {
            UserError::UnknownRole(_) => "未知角色（应为经办人、主管、审计员或管理员）".to_string(),
            UserError::ClerkWithoutAgency => {
                "经办人须指定所属机关（机构名录中的机关编号）".to_string()
            }
            UserError::UnknownAgency(a) => format!("机构名录中没有机关 {a}"),
            UserError::SupervisorWithoutRegion => {
                "主管须指定辖区（行政区划代码前缀，如 62 或 6201）".to_string()
            }
            UserError::WeakPassword => format!("密码至少需要 {MIN_PASSWORD_CHARS} 个字符"),
            UserError::Taken(name) => format!("用户名 {name} 已被使用"),
            UserError::BadUsername => "用户名须为 3–64 个字母、数字或 “.” “-” “_”".to_string(),
            UserError::Hash(_) | UserError::Store(_) => "操作失败，请稍后重试".to_string(),
        };
        let en = match self {
            UserError::Hash(_) | UserError::Store(_) => {
                "the change failed; try again later".to_string()
            }
            UserError::ClerkWithoutAgency => "a clerk needs an agency of the registry".to_string(),
            UserError::SupervisorWithoutRegion => {
                "a supervisor needs a region, a division code prefix such as 62 or 6201".to_string()
            }
            other => other.to_string(),
        };
        (zh, en)
    }
}

/// For the embedded default only: when a data directory with a DEV-ONLY PKI
/// has no users yet, creates one clerk per registered agency, a supervisor
/// for the province (62), an auditor and an admin, each with a random
/// password, and writes them to `DIR/dev-users.txt` (mode 0600). Returns
/// that file when it created users.
pub async fn seed_dev_users(gw: &Gateway) -> Result<Option<PathBuf>, UserError> {
    Ok(seed_dev_users_listed(gw).await?.map(|(file, _)| file))
}

/// The same, also returning the logins made (user name, role, password) for
/// the `demo` command to print once.
pub async fn seed_dev_users_listed(
    gw: &Gateway,
) -> Result<Option<(PathBuf, Vec<(String, String, String)>)>, UserError> {
    if gw.store.user_count().await? > 0 {
        return Ok(None);
    }
    let mut people: Vec<NewUser> = gw
        .registry
        .iter()
        .map(|a| NewUser {
            username: format!("clerk.{}", a.id.as_str()),
            password: String::new(),
            role: "clerk".into(),
            agency: Some(a.id.as_str().to_string()),
            region: None,
            email: a.email.first().cloned(),
        })
        .collect();
    for (username, role, region) in [
        ("supervisor.62", "supervisor", Some("62")),
        ("auditor", "auditor", None),
        ("admin", "admin", None),
    ] {
        people.push(NewUser {
            username: username.into(),
            password: String::new(),
            role: role.into(),
            agency: None,
            region: region.map(str::to_string),
            email: None,
        });
    }
    let mut text = String::from(
        "# DEV ONLY — generated web logins of the embedded demo; never use in production.\n\
         # user name\trole\tpassword\n",
    );
    let mut logins = Vec::new();
    for mut person in people {
        person.password = random_token()[..20].to_string();
        text.push_str(&format!(
            "{}\t{}\t{}\n",
            person.username, person.role, person.password
        ));
        logins.push((
            person.username.clone(),
            person.role.clone(),
            person.password.clone(),
        ));
        add(gw, person).await?;
    }
    let path = gw.settings.dir.join("dev-users.txt");
    write_private(&path, &text).map_err(|e| UserError::Hash(format!("{}: {e}", path.display())))?;
    Ok(Some((path, logins)))
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}
