//! create_or_update for a batch of users in one transaction: gather the facts for every item
//! with a few set-based queries, let the model decide item by item (each item sees the ones
//! before it, exactly as if they had run one after another), then write the outcome with a few
//! multi-row statements. The single endpoint runs batches of the requests waiting at the same
//! moment; bulk jobs run their items through the same path.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use deskd_model::Rejection;
use deskd_model::custom_field::{FieldDef, FieldKey, Resource};
use deskd_model::identity::{IdentityKey, IdentityRecord};
use deskd_model::input::UserInput;
use deskd_model::organization::OrganizationRecord;
use deskd_model::role::Actor;
use deskd_model::text::normalize;
use deskd_model::upsert::{self, Facts, NewIdentity, Plan, Target};
use deskd_model::user::UserRecord;
use sqlx::AnyConnection;

use crate::{Backend, StoreError, organizations, users};

/// The user as written, and whether it was created (201) or updated (200).
pub type Upserted = deskd_model::Saved<UserRecord>;

/// One create_or_update request: what to write and who asks.
#[derive(Clone, Debug)]
pub struct UpsertItem {
    pub input: Arc<UserInput>,
    pub actor: Actor,
    pub mode: Mode,
}

/// What an item may do: create_or_update either; create_many only create (an existing match is
/// a duplicate); update_many only update (no match is RecordNotFound).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    CreateOrUpdate,
    CreateOnly,
    UpdateOnly,
}

pub type UpsertOutcome = Result<Upserted, Rejection>;

/// One item's outcome as the single endpoint answers it: with the user fields defined when it
/// was written, which its answer lists.
#[derive(Debug)]
pub struct Answer {
    pub outcome: UpsertOutcome,
    pub user_fields: Arc<[FieldKey]>,
}

/// The state of the users a batch touches, as it would be after each item so far.
#[derive(Default)]
struct Working {
    users: HashMap<i64, (UserRecord, Vec<IdentityRecord>)>,
    owners: HashMap<IdentityKey, i64>,
    external_ids: HashMap<String, i64>,
    organizations: HashSet<i64>,
    organizations_by_name: HashMap<String, i64>,
    /// Batch-local ids are negative until the write assigns real ones.
    next_temp: i64,
    new_organizations: Vec<(i64, String)>,
    new_users: Vec<i64>,
    dirty_users: Vec<i64>,
    new_identities: Vec<(i64, NewIdentity)>,
    /// Existing identities whose verified flag changes: (identity id, verified).
    verify_identities: Vec<(i64, bool)>,
    /// An existing user's role, suspension or activity changed: cached logins must be re-checked.
    reduces_access: bool,
    /// The account owner, whom nobody can demote or suspend.
    owner: Option<i64>,
    /// Each existing user as read (under its lock) when the batch began.
    stored: HashMap<i64, UserRecord>,
    /// Users (batch-local ids for new ones) whose input set their organization, which replaces
    /// their memberships, in order of first mention.
    organization_set: Vec<i64>,
    /// The user fields defined, which every item's `user_fields` is checked against.
    user_fields: Arc<[FieldDef]>,
}

impl Working {
    fn temp_id(&mut self) -> i64 {
        self.next_temp -= 1;
        self.next_temp
    }

    /// Whether the batch writes anything of an existing user: a changed row, or memberships
    /// replaced by a set organization (even one the user already has, which leaves the row
    /// as it was but deletes its other memberships).
    fn changes_existing_users(&self) -> bool {
        !self.dirty_users.is_empty() || self.organization_set.iter().any(|id| *id > 0)
    }
}

/// What a batch did: one outcome per item, in order, and the user fields it decided with.
#[derive(Debug)]
pub struct Batch {
    pub outcomes: Vec<UpsertOutcome>,
    /// The user fields defined when the batch was written, in display order: what its answers
    /// show, read in the same transaction as the users (no second query per answer).
    pub user_fields: Arc<[FieldKey]>,
}

/// Runs `items` in order inside the caller's transaction and returns one outcome per item.
pub async fn create_or_update_batch(
    conn: &mut AnyConnection,
    backend: Backend,
    items: &[UpsertItem],
    now: i64,
) -> Result<Batch, StoreError> {
    // First decided on facts read without locks: a batch that only creates users (guarded by
    // the unique indexes) or changes nothing needs none. One that changes existing users (their
    // rows or their memberships) is decided again on their rows locked (PostgreSQL), so no
    // writer decides on a stale row.
    let (mut w, mut outcomes) = decide_all(conn, backend, items, false, now).await?;
    if backend == Backend::Postgres && w.changes_existing_users() {
        (w, outcomes) = decide_all(conn, backend, items, true, now).await?;
    }
    write(conn, backend, &mut w, &mut outcomes, now).await?;
    let user_fields = w.user_fields.iter().map(FieldDef::as_key).collect();
    Ok(Batch {
        outcomes,
        user_fields,
    })
}

async fn decide_all(
    conn: &mut AnyConnection,
    backend: Backend,
    items: &[UpsertItem],
    lock: bool,
    now: i64,
) -> Result<(Working, Vec<UpsertOutcome>), StoreError> {
    let mut w = gather(conn, backend, items, lock).await?;
    let outcomes = items.iter().map(|item| decide(&mut w, item, now)).collect();
    Ok((w, outcomes))
}

/// Rounds of "find the users involved, lock them, look again" before a batch gives up (and is
/// retried whole). Each round can only add users that changed hands meanwhile.
const LOCK_ROUNDS: usize = 4;

/// Loads, in a handful of queries, every fact any item of the batch could need. With `lock`, on
/// PostgreSQL, the rows of every existing user involved are locked first (`FOR UPDATE`) and the
/// facts read after, so two writers of one user serialize and neither decides on a stale row;
/// SQLite's single writer already serializes.
async fn gather(
    conn: &mut AnyConnection,
    backend: Backend,
    items: &[UpsertItem],
    lock: bool,
) -> Result<Working, StoreError> {
    let lock = lock && backend == Backend::Postgres;
    let mut keys: Vec<IdentityKey> = Vec::new();
    let mut seen_keys = HashSet::new();
    let mut external_ids: Vec<String> = Vec::new();
    let mut ids: Vec<i64> = Vec::new();
    let mut org_ids: Vec<i64> = Vec::new();
    let mut org_names: Vec<String> = Vec::new();
    for item in items {
        let input = &item.input;
        for k in upsert::identity_keys(input) {
            if seen_keys.insert(k.clone()) {
                keys.push(k);
            }
        }
        if let Some(Some(ext)) = &input.external_id {
            external_ids.push(normalize(ext));
        }
        ids.extend(input.id);
        if let Some(Some(org)) = input.organization_id {
            org_ids.push(org);
        }
        if let Some(name) = &input.organization_name {
            org_names.push(normalize(name));
        }
    }
    let mut w = Working::default();
    // The organizations named, before the users (the order a delete takes them in): none can
    // be deleted under a user write that decided it exists.
    organizations::lock_shared(conn, &org_ids, &org_names).await?;
    // One statement finds and locks the users named; the loop below then reads the facts and
    // only has more to lock when a key changed hands in between.
    let mut locked: HashSet<i64> = if lock {
        users::lock_named(conn, &ids, &external_ids, &keys)
            .await?
            .into_iter()
            .collect()
    } else {
        HashSet::new()
    };
    for round in 1.. {
        w.owners = users::identity_owners(conn, &keys)
            .await?
            .into_iter()
            .collect();
        w.external_ids = users::ids_by_external_ids(conn, &external_ids).await?;
        if !lock {
            break;
        }
        let mut missing: Vec<i64> = ids
            .iter()
            .chain(w.owners.values())
            .chain(w.external_ids.values())
            .copied()
            .filter(|id| !locked.contains(id))
            .collect();
        if missing.is_empty() {
            break;
        }
        if round > LOCK_ROUNDS {
            return Err(StoreError::Contention(round as u32));
        }
        missing.sort_unstable();
        missing.dedup();
        users::lock(conn, &missing).await?;
        locked.extend(missing);
    }
    ids.extend(w.owners.values().copied());
    ids.extend(w.external_ids.values().copied());
    for (user, identities) in users::load_many_with_identities(conn, &ids).await? {
        w.stored.insert(user.id, user.clone());
        w.users.insert(user.id, (user, identities));
    }
    w.organizations = organizations::existing_ids(conn, &org_ids).await?;
    w.organizations_by_name = organizations::ids_by_names(conn, &org_names).await?;
    w.owner = users::account_owner(conn).await?;
    w.user_fields = crate::custom_fields::list(conn, Resource::User)
        .await?
        .into();
    Ok(w)
}

/// Decides one item against the working state and applies its plan there.
fn decide(w: &mut Working, item: &UpsertItem, now: i64) -> UpsertOutcome {
    let input = &item.input;
    // A soft-deleted user is gone for writes: only `id` can still name it, and it answers 404.
    let id_exists = input
        .id
        .map(|id| w.users.get(&id).is_some_and(|(u, _)| u.active));
    let external_id_owner = match &input.external_id {
        Some(Some(ext)) => w.external_ids.get(&normalize(ext)).copied(),
        _ => None,
    };
    let email_owner = input
        .emails()
        .find_map(|e| w.owners.get(&IdentityKey::new("email", e)).copied());
    let target = match (
        item.mode,
        upsert::resolve(input, id_exists, external_id_owner, email_owner),
    ) {
        // create_many ignores ids; a match is left for the plan to report as a duplicate.
        (Mode::CreateOnly, _) => None,
        (_, Target::UnknownId) => return Err(Rejection::NotFound),
        (Mode::UpdateOnly, Target::New | Target::Email(_)) => return Err(Rejection::NotFound),
        (_, Target::Id(id) | Target::ExternalId(id) | Target::Email(id)) => Some(id),
        (_, Target::New) => None,
    };
    let facts = Facts {
        existing: target.and_then(|id| w.users.get(&id).cloned()),
        identity_owners: upsert::identity_keys(input)
            .into_iter()
            .filter_map(|k| w.owners.get(&k).map(|owner| (k, *owner)))
            .collect(),
        external_id_owner,
        organization_exists: match input.organization_id {
            Some(Some(id)) => Some(w.organizations.contains(&id)),
            _ => None,
        },
        organization_by_name: input
            .organization_name
            .as_ref()
            .and_then(|n| w.organizations_by_name.get(&normalize(n)).copied()),
        account_owner: w.owner,
        user_fields: w.user_fields.clone(),
    };
    let plan = upsert::plan(input, item.actor, &facts, now)?;
    let sets_organization = input.organization_id.is_some() || input.organization_name.is_some();
    let done = apply(w, plan, facts.existing, now);
    let id = done.record().id;
    if sets_organization && !w.organization_set.contains(&id) {
        w.organization_set.push(id);
    }
    Ok(done)
}

fn apply(
    w: &mut Working,
    plan: Plan,
    existing: Option<(UserRecord, Vec<IdentityRecord>)>,
    now: i64,
) -> Upserted {
    let mut user = plan.user;
    let old_ext = existing
        .as_ref()
        .and_then(|(u, _)| u.external_id.as_deref().map(normalize));
    w.reduces_access |= plan.reduces_access;
    let identities = existing.map(|(_, ids)| ids);
    if let Some(name) = &plan.create_organization {
        let org = w.temp_id();
        w.organizations_by_name.insert(normalize(name), org);
        w.new_organizations.push((org, name.clone()));
        user.organization_id = Some(org);
    }
    if plan.created {
        user.id = w.temp_id();
        w.new_users.push(user.id);
    } else if plan.changed && user.id > 0 && !w.dirty_users.contains(&user.id) {
        w.dirty_users.push(user.id);
    }
    let mut identities = identities.unwrap_or_default();
    for n in &plan.new_identities {
        w.owners
            .insert(IdentityKey::new(&n.kind, &n.value), user.id);
        identities.push(IdentityRecord {
            id: 0,
            user_id: user.id,
            kind: n.kind.clone(),
            value: n.value.clone(),
            verified: n.verified,
            primary: n.primary,
            created_at: now,
            updated_at: now,
        });
        w.new_identities.push((user.id, n.clone()));
    }
    if let Some(v) = plan.verify_primary {
        // Only the identities the user has at this point of the batch change.
        for i in identities
            .iter_mut()
            .filter(|i| i.kind == "email" && i.primary)
        {
            i.verified = v;
            if i.id > 0 {
                w.verify_identities.push((i.id, v));
            } else if let Some((_, pending)) = w
                .new_identities
                .iter_mut()
                .find(|(uid, n)| *uid == user.id && n.kind == "email" && n.value == i.value)
            {
                pending.verified = v;
            }
        }
    }
    let new_ext = user.external_id.as_deref().map(normalize);
    if new_ext != old_ext {
        if let Some(old) = old_ext
            && w.external_ids.get(&old) == Some(&user.id)
        {
            w.external_ids.remove(&old);
        }
        if let Some(new) = new_ext {
            w.external_ids.insert(new, user.id);
        }
    }
    w.users.insert(user.id, (user.clone(), identities));
    Upserted::new(plan.created, user)
}

/// Writes the working state: new organizations, new users, changed users, new identities.
async fn write(
    conn: &mut AnyConnection,
    backend: Backend,
    w: &mut Working,
    outcomes: &mut [UpsertOutcome],
    now: i64,
) -> Result<(), StoreError> {
    let mut real: HashMap<i64, i64> = HashMap::new();
    for (temp, name) in &w.new_organizations {
        let id = organizations::insert(conn, &OrganizationRecord::new(name.clone(), now)).await?;
        real.insert(*temp, id);
    }
    let org_of = |real: &HashMap<i64, i64>, u: &mut UserRecord| {
        if let Some(org) = u.organization_id.filter(|o| *o < 0) {
            u.organization_id = real.get(&org).copied();
        }
    };
    let user_ids = users::allocate_ids(conn, backend, w.new_users.len()).await?;
    for (temp, id) in w.new_users.iter().zip(user_ids) {
        real.insert(*temp, id);
    }
    let mut new_rows = Vec::with_capacity(w.new_users.len());
    for temp in &w.new_users {
        if let Some((u, _)) = w.users.get(temp) {
            let mut u = u.clone();
            u.id = real[temp];
            org_of(&real, &mut u);
            new_rows.push(u);
        }
    }
    // The unique index on external ids is not deferrable: an external id that moves between
    // users inside the batch is released first, then the changed users are written, then the
    // new ones, so no order of items can collide with itself.
    let releasing: Vec<i64> = w
        .dirty_users
        .iter()
        .copied()
        .filter(|id| {
            let now_ext = w
                .users
                .get(id)
                .and_then(|(u, _)| u.external_id.as_deref().map(normalize));
            w.stored
                .get(id)
                .and_then(|u| u.external_id.as_deref().map(normalize))
                .is_some_and(|old| Some(old) != now_ext)
        })
        .collect();
    users::release_external_ids(conn, &releasing).await?;
    for id in &w.dirty_users {
        if let (Some((u, _)), Some(old)) = (w.users.get(id), w.stored.get(id)) {
            let mut u = u.clone();
            org_of(&real, &mut u);
            let mut old = old.clone();
            if releasing.contains(id) {
                old.external_id = None;
            }
            users::update(conn, &old, &u).await?;
        }
    }
    users::insert_many(conn, &new_rows).await?;
    let fix = |id: i64| {
        if id < 0 {
            real.get(&id).copied().unwrap_or(id)
        } else {
            id
        }
    };
    let identities: Vec<(i64, NewIdentity)> = w
        .new_identities
        .iter()
        .map(|(uid, n)| (fix(*uid), n.clone()))
        .collect();
    users::insert_identities(conn, &identities, now).await?;
    // Setting organization_id (or organization: {name}) replaces the user's memberships with
    // that one organization, as its default.
    let mut replaced = Vec::with_capacity(w.organization_set.len());
    for id in &w.organization_set {
        if let Some((u, _)) = w.users.get(id) {
            let mut u = u.clone();
            org_of(&real, &mut u);
            let view =
                deskd_model::membership::view_tickets(u.role, u.ticket_restriction.as_deref());
            replaced.push((fix(*id), u.organization_id, view));
        }
    }
    crate::memberships::replace_for_users(conn, &replaced, now).await?;
    if w.reduces_access {
        crate::credentials::bump_epoch(&mut *conn).await?;
    }
    for (identity_id, v) in &w.verify_identities {
        users::set_identity_verified(conn, *identity_id, *v, now).await?;
    }
    for outcome in outcomes.iter_mut() {
        if let Ok(saved) = outcome {
            let u = saved.record_mut();
            u.id = fix(u.id);
            org_of(&real, u);
        }
    }
    Ok(())
}
