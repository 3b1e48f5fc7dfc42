//! create_or_update inside one transaction: gather the facts, let the model decide, write the plan.

use deskd_model::Rejection;
use deskd_model::input::UserInput;
use deskd_model::organization::OrganizationRecord;
use deskd_model::role::Actor;
use deskd_model::upsert::{self, Facts, Target};
use deskd_model::user::UserRecord;
use sqlx::AnyConnection;

use crate::{StoreError, organizations, users};

/// The user as written, and whether it was created (201) or updated (200).
#[derive(Clone, Debug)]
pub enum Upserted {
    Created(UserRecord),
    Updated(UserRecord),
}

impl Upserted {
    pub fn user(&self) -> &UserRecord {
        match self {
            Upserted::Created(u) | Upserted::Updated(u) => u,
        }
    }
}

/// Creates or updates the user `input` names. Must run inside a write transaction.
pub async fn create_or_update(conn: &mut AnyConnection, input: &UserInput, actor: Actor, now: i64) -> Result<Result<Upserted, Rejection>, StoreError> {
    let keys = upsert::identity_keys(input);
    let identity_owners = users::identity_owners(conn, &keys).await?;
    let external_id_owner = match &input.external_id {
        Some(Some(ext)) => users::id_by_external_id(conn, ext).await?,
        _ => None,
    };
    let mut existing = None;
    if let Some(id) = input.id {
        existing = users::load(conn, id).await?;
    }
    let email_owner = input.emails().find_map(|e| {
        let key = deskd_model::identity::IdentityKey::new("email", e);
        identity_owners.iter().find(|(k, _)| *k == key).map(|(_, uid)| *uid)
    });
    let target = upsert::resolve(input, input.id.map(|_| existing.is_some()), external_id_owner, email_owner);
    let target_id = match target {
        Target::UnknownId => return Ok(Err(Rejection::NotFound)),
        Target::Id(id) | Target::ExternalId(id) | Target::Email(id) => Some(id),
        Target::New => None,
    };
    if let Some(id) = target_id {
        if existing.is_none() {
            existing = users::load(conn, id).await?;
        }
    }
    let existing = match existing {
        Some(u) => {
            let ids = users::identities(conn, u.id).await?;
            Some((u, ids))
        }
        None => None,
    };
    let organization_exists = match input.organization_id {
        Some(Some(id)) => Some(organizations::exists(conn, id).await?),
        _ => None,
    };
    let organization_by_name = match (&input.organization_name, input.organization_id) {
        (Some(name), None) => organizations::id_by_name(conn, name).await?,
        _ => None,
    };
    let facts = Facts { existing, identity_owners, external_id_owner, organization_exists, organization_by_name };
    let plan = match upsert::plan(input, actor, &facts, now) {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    write_plan(conn, plan, now).await.map(Ok)
}

async fn write_plan(conn: &mut AnyConnection, plan: upsert::Plan, now: i64) -> Result<Upserted, StoreError> {
    let mut user = plan.user;
    if let Some(name) = &plan.create_organization {
        let org_id = organizations::insert(conn, &OrganizationRecord::new(name.clone(), now)).await?;
        user.organization_id = Some(org_id);
    }
    if plan.created {
        user.id = users::insert(conn, &user).await?;
    } else if plan.changed {
        users::update(conn, &user).await?;
    }
    for ident in &plan.new_identities {
        users::insert_identity(conn, user.id, ident, now).await?;
    }
    if let Some(v) = plan.verify_primary {
        users::set_primary_email_verified(conn, user.id, v, now).await?;
    }
    Ok(if plan.created { Upserted::Created(user) } else { Upserted::Updated(user) })
}
