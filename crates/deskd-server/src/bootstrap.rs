//! The first admin: created at start when the database has none.

use deskd_model::Role;
use deskd_model::time;
use deskd_model::upsert::NewIdentity;
use deskd_model::user::UserRecord;
use deskd_store::{Store, StoreError, credentials, users};

use crate::auth::{digest, hash_password, new_secret};

/// Credentials for the first admin, from `DESKD_ADMIN_EMAIL` / `DESKD_ADMIN_TOKEN` /
/// `DESKD_ADMIN_PASSWORD`.
#[derive(Clone, Debug, Default)]
pub struct AdminSeed {
    pub email: Option<String>,
    pub token: Option<String>,
    pub password: Option<String>,
}

pub const DEFAULT_ADMIN_EMAIL: &str = "admin@deskd.local";

/// What was created, so the caller can print generated secrets once.
#[derive(Debug)]
pub struct CreatedAdmin {
    pub email: String,
    /// The API token, when deskd generated it (never when it was given).
    pub generated_token: Option<String>,
}

/// Creates the first admin unless an admin exists. Returns what was created.
pub async fn ensure_admin(
    store: &Store,
    seed: &AdminSeed,
) -> Result<Option<CreatedAdmin>, StoreError> {
    let email = seed
        .email
        .clone()
        .unwrap_or_else(|| DEFAULT_ADMIN_EMAIL.to_owned());
    let generated_token = match (&seed.token, &seed.password) {
        (None, None) => Some(new_secret()),
        _ => None,
    };
    let token_digest = seed
        .token
        .as_deref()
        .or(generated_token.as_deref())
        .map(digest);
    let password_hash = match &seed.password {
        Some(p) => Some(hash_password(p).map_err(|e| StoreError::Corrupt(e.to_string()))?),
        None => None,
    };
    let now = time::now();
    let created = store
        .write(move |conn| {
            let (email, token_digest, password_hash) =
                (email.clone(), token_digest.clone(), password_hash.clone());
            Box::pin(async move {
                if users::admin_exists(conn).await? {
                    return Ok(None);
                }
                let mut admin = UserRecord::new("Admin".to_owned(), Role::Admin, now);
                admin.email = Some(email.clone());
                admin.verified = true;
                let id = users::insert(conn, &admin).await?;
                users::set_account_owner(conn, id).await?;
                // An earlier install may have left this address on a non-admin; it moves here.
                if let Some(owner) = users::id_by_identity(conn, "email", &email).await? {
                    users::delete_identity_by_value(conn, owner, "email", &email).await?;
                }
                let ident = NewIdentity {
                    kind: "email".into(),
                    value: email.clone(),
                    verified: true,
                    primary: true,
                };
                users::insert_identity(conn, id, &ident, now).await?;
                if let Some(d) = &token_digest {
                    credentials::insert_api_token(conn, d, "deskd first admin", now).await?;
                }
                if let Some(h) = &password_hash {
                    users::set_password_hash(conn, id, h).await?;
                }
                Ok(Some(email))
            })
        })
        .await?;
    Ok(created.map(|email| CreatedAdmin {
        email,
        generated_token,
    }))
}
