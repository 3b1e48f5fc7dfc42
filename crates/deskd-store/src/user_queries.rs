//! Reading users in bulk: lists (by id cursor or offset), search, counts, show_many.

use deskd_model::Role;
use deskd_model::search::{Cmp, DAY_SECS, Term};
use deskd_model::user::UserRecord;
use sqlx::AnyConnection;

use crate::StoreError;
use crate::rows::{self, Params, Q, all, first, int};

/// Which users a read wants.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Soft-deleted users instead of active ones.
    pub deleted: bool,
    pub roles: Vec<Role>,
    pub external_id: Option<String>,
    pub organization_id: Option<i64>,
    pub terms: Vec<Term>,
    /// Terms that must not hold (Zendesk's `-term`).
    pub excluded: Vec<Term>,
    /// The order of offset pages: a column of [`SORT_COLUMNS`] and whether descending; id order
    /// when `None`.
    pub sort: Option<(&'static str, bool)>,
    /// Names starting with this (case-insensitive), of users without a foreign identity: the
    /// autocomplete.
    pub name_prefix: Option<String>,
}

/// The columns a search may sort by.
pub const SORT_COLUMNS: &[&str] = &["created_at", "updated_at", "name"];

/// A value bound to the WHERE clause being built.
pub(crate) enum Arg {
    Int(i64),
    Text(String),
}

/// `s` as a LIKE pattern that matches itself: `\`, `%` and `_` are literal (every LIKE here says
/// `ESCAPE '\'`, the same on both backends).
pub(crate) fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A search term as a LIKE pattern: literal but for `*`, Zendesk's wildcard.
pub(crate) fn like_pattern(s: &str) -> String {
    like_literal(s).replace('*', "%")
}

/// SQL for `filter` as a WHERE clause, and the values to bind in order.
pub(crate) fn where_clause(p: &mut Params, filter: &UserFilter) -> (String, Vec<Arg>) {
    let mut parts = vec![format!("active = {}", if filter.deleted { 0 } else { 1 })];
    let mut args = Vec::new();
    if !filter.roles.is_empty() {
        parts.push(format!("role IN ({})", p.list(filter.roles.len())));
        args.extend(
            filter
                .roles
                .iter()
                .map(|r| Arg::Text(r.as_str().to_owned())),
        );
    }
    if let Some(ext) = &filter.external_id {
        parts.push(format!("external_id_norm = {}", p.one()));
        args.push(Arg::Text(deskd_model::text::normalize(ext)));
    }
    if let Some(org) = filter.organization_id {
        parts.push(format!(
            "id IN (SELECT user_id FROM organization_memberships WHERE organization_id = {})",
            p.one()
        ));
        args.push(Arg::Int(org));
    }
    if let Some(prefix) = &filter.name_prefix {
        parts.push(format!(
            "name_norm LIKE {} ESCAPE '\\' AND id NOT IN (SELECT user_id FROM identities WHERE type = 'foreign')",
            p.one()
        ));
        args.push(Arg::Text(format!(
            "{}%",
            like_literal(&deskd_model::text::fold(prefix))
        )));
    }
    for term in &filter.terms {
        let (sql, a) = term_sql(p, term);
        parts.push(sql);
        args.extend(a);
    }
    for term in &filter.excluded {
        let (sql, a) = term_sql(p, term);
        parts.push(format!("NOT ({sql})"));
        args.extend(a);
    }
    (parts.join(" AND "), args)
}

/// `%pattern%` for a contains-match, `*` a wildcard.
pub(crate) fn like(s: &str) -> String {
    format!("%{}%", like_pattern(s))
}

/// The SQL of a date comparison on `column`.
pub(crate) fn date_sql(p: &mut Params, column: &str, cmp: Cmp, at: i64) -> (String, Vec<Arg>) {
    let op = match cmp {
        Cmp::Day => {
            let (a, b) = (p.one(), p.one());
            return (
                format!("({column} >= {a} AND {column} < {b})"),
                vec![Arg::Int(at), Arg::Int(at + DAY_SECS)],
            );
        }
        Cmp::Lt => "<",
        Cmp::Le => "<=",
        Cmp::Gt => ">",
        Cmp::Ge => ">=",
    };
    (format!("{column} {op} {}", p.one()), vec![Arg::Int(at)])
}

/// One search term's condition on a user row, and its values.
fn term_sql(p: &mut Params, term: &Term) -> (String, Vec<Arg>) {
    let text = |s: &str| vec![Arg::Text(s.to_owned())];
    let contains = |p: &mut Params, col: &str, w: &str| {
        (
            format!("lower(COALESCE({col}, '')) LIKE {} ESCAPE '\\'", p.one()),
            vec![Arg::Text(like(w))],
        )
    };
    match term {
        Term::Email(e) if e.contains('*') => (
            format!(
                "id IN (SELECT user_id FROM identities WHERE type = 'email' AND value_norm LIKE {} ESCAPE '\\')",
                p.one()
            ),
            text(&like_pattern(e)),
        ),
        Term::Email(e) => (
            format!(
                "id IN (SELECT user_id FROM identities WHERE type = 'email' AND value_norm = {})",
                p.one()
            ),
            text(e),
        ),
        Term::ExternalId(e) => (format!("external_id_norm = {}", p.one()), text(e)),
        Term::Name(n) => (
            format!("name_norm LIKE {} ESCAPE '\\'", p.one()),
            vec![Arg::Text(like(n))],
        ),
        Term::Role(r) => (format!("role = {}", p.one()), text(r.as_str())),
        Term::OrganizationId(o) => (
            format!(
                "id IN (SELECT user_id FROM organization_memberships WHERE organization_id = {})",
                p.one()
            ),
            vec![Arg::Int(*o)],
        ),
        Term::Tag(t) => (
            format!("tags LIKE {} ESCAPE '\\'", p.one()),
            text(&format!(
                "%{}%",
                like_literal(&serde_json::Value::String(t.clone()).to_string())
            )),
        ),
        Term::Phone(w) => {
            let (a, b) = (p.one(), p.one());
            (
                format!(
                    "(lower(COALESCE(phone, '')) LIKE {a} ESCAPE '\\' OR id IN (SELECT user_id FROM identities WHERE type = 'phone_number' AND value_norm LIKE {b} ESCAPE '\\'))"
                ),
                vec![Arg::Text(like(w)), Arg::Text(like(w))],
            )
        }
        Term::Notes(w) => contains(p, "notes", w),
        Term::Details(w) => contains(p, "details", w),
        Term::Created(cmp, at) => date_sql(p, "created_at", *cmp, *at),
        Term::Updated(cmp, at) => date_sql(p, "updated_at", *cmp, *at),
        // A bare word: part of the name, an email address, the notes or the phone (Zendesk: "a
        // partial or full value of any user property, including name, email address, notes,
        // or phone").
        Term::Any(w) => {
            let (a, b, c, d) = (p.one(), p.one(), p.one(), p.one());
            (
                format!(
                    "(name_norm LIKE {a} ESCAPE '\\' OR id IN (SELECT user_id FROM identities WHERE type = 'email' AND value_norm LIKE {b} ESCAPE '\\') \
                     OR lower(COALESCE(notes, '')) LIKE {c} ESCAPE '\\' OR lower(COALESCE(phone, '')) LIKE {d} ESCAPE '\\')"
                ),
                (0..4).map(|_| Arg::Text(like(w))).collect(),
            )
        }
    }
}

pub(crate) fn bind<'q>(mut q: Q<'q>, args: Vec<Arg>) -> Q<'q> {
    for a in args {
        q = match a {
            Arg::Int(i) => q.bind(i),
            Arg::Text(s) => q.bind(s),
        };
    }
    q
}

/// A cursor page by id: ascending after `after`, or the page just before `before`. Reads one
/// row more than `limit` so the caller can tell whether there is more.
pub async fn page_by_id(
    conn: &mut AnyConnection,
    filter: &UserFilter,
    after: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<UserRecord>, StoreError> {
    let mut p = Params::new(conn);
    let (mut clause, mut args) = where_clause(&mut p, filter);
    let desc = before.is_some();
    if let Some(a) = after {
        clause.push_str(&format!(" AND id > {}", p.one()));
        args.push(Arg::Int(a));
    }
    if let Some(b) = before {
        clause.push_str(&format!(" AND id < {}", p.one()));
        args.push(Arg::Int(b));
    }
    let sql = format!(
        "SELECT {} FROM users WHERE {clause} ORDER BY id {} LIMIT {}",
        rows::USER_COLUMNS,
        if desc { "DESC" } else { "ASC" },
        p.one()
    );
    args.push(Arg::Int(limit + 1));
    let mut users: Vec<UserRecord> = all(conn, bind(sqlx::query(&sql), args))
        .await?
        .iter()
        .map(rows::user)
        .collect::<Result<_, _>>()?;
    if desc {
        users.reverse();
    }
    Ok(users)
}

/// An offset page in id order.
pub async fn page_by_offset(
    conn: &mut AnyConnection,
    filter: &UserFilter,
    offset: i64,
    limit: i64,
) -> Result<Vec<UserRecord>, StoreError> {
    let mut p = Params::new(conn);
    let (clause, mut args) = where_clause(&mut p, filter);
    let order = match filter.sort {
        Some((col, desc)) if SORT_COLUMNS.contains(&col) => {
            let dir = if desc { "DESC" } else { "ASC" };
            format!("{col} {dir}, id {dir}")
        }
        _ => "id".to_owned(),
    };
    let sql = format!(
        "SELECT {} FROM users WHERE {clause} ORDER BY {order} LIMIT {} OFFSET {}",
        rows::USER_COLUMNS,
        p.one(),
        p.one()
    );
    args.push(Arg::Int(limit));
    args.push(Arg::Int(offset));
    all(conn, bind(sqlx::query(&sql), args))
        .await?
        .iter()
        .map(rows::user)
        .collect()
}

pub async fn count(conn: &mut AnyConnection, filter: &UserFilter) -> Result<i64, StoreError> {
    let mut p = Params::new(conn);
    let (clause, args) = where_clause(&mut p, filter);
    let sql = format!("SELECT COUNT(*) AS n FROM users WHERE {clause}");
    let row = first(conn, bind(sqlx::query(&sql), args)).await?;
    row.map(|r| int(&r, "n"))
        .transpose()
        .map(|n| n.unwrap_or(0))
}

/// Users by id or by external id (normalised), in the order asked; unknown ones left out.
pub async fn show_many(
    conn: &mut AnyConnection,
    ids: &[i64],
    external_ids: &[String],
    include_deleted: bool,
) -> Result<Vec<UserRecord>, StoreError> {
    let active = if include_deleted {
        ""
    } else {
        " AND active = 1"
    };
    let mut found = Vec::new();
    if !ids.is_empty() {
        let sql = format!(
            "SELECT {} FROM users WHERE id IN ({}){active}",
            rows::USER_COLUMNS,
            Params::new(conn).list(ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        let got: Vec<UserRecord> = all(conn, q)
            .await?
            .iter()
            .map(rows::user)
            .collect::<Result<_, _>>()?;
        for id in ids {
            found.extend(got.iter().find(|u| u.id == *id).cloned());
        }
    }
    if !external_ids.is_empty() {
        let norms: Vec<String> = external_ids
            .iter()
            .map(|e| deskd_model::text::normalize(e))
            .collect();
        let sql = format!(
            "SELECT {} FROM users WHERE external_id_norm IN ({}){active}",
            rows::USER_COLUMNS,
            Params::new(conn).list(norms.len())
        );
        let mut q = sqlx::query(&sql);
        for n in &norms {
            q = q.bind(n.clone());
        }
        let got: Vec<UserRecord> = all(conn, q)
            .await?
            .iter()
            .map(rows::user)
            .collect::<Result<_, _>>()?;
        for n in &norms {
            found.extend(
                got.iter()
                    .find(|u| {
                        u.external_id
                            .as_deref()
                            .map(deskd_model::text::normalize)
                            .as_ref()
                            == Some(n)
                    })
                    .cloned(),
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    found.retain(|u| seen.insert(u.id));
    Ok(found)
}

/// Erases a soft-deleted user's personal data for good (Zendesk's permanent deletion).
pub async fn erase(
    conn: &mut AnyConnection,
    id: i64,
    now: i64,
) -> Result<Option<UserRecord>, StoreError> {
    crate::users::lock(conn, &[id]).await?;
    // Whether there is a soft-deleted user to erase, read before it is erased.
    let before = crate::users::load(conn, id).await?.filter(|u| !u.active);
    // Only a soft-deleted user is erased: the check comes first, so an active user's id
    // changes nothing (this transaction commits whatever ran before a `None`).
    let res = sqlx::query(
        "UPDATE users SET name = 'Permanently Deleted User', name_norm = 'permanently deleted user', email = NULL, external_id = NULL, external_id_norm = NULL, \
         phone = NULL, shared_phone_number = NULL, alias = NULL, details = NULL, notes = NULL, signature = NULL, \
         remote_photo_url = NULL, tags = '[]', user_fields = '{}', password_hash = NULL, organization_id = NULL, \
         default_group_id = NULL, verified = 0, updated_at = $1 WHERE id = $2 AND active = 0",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if res.rows_affected() == 0 {
        return Ok(None);
    }
    sqlx::query("DELETE FROM oauth_tokens WHERE user_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM identities WHERE user_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM organization_memberships WHERE user_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if let Some(u) = &before {
        // Soft deletion released the identities; what is left to know the user by in job data.
        let values = u
            .email
            .as_deref()
            .into_iter()
            .chain(u.external_id.as_deref());
        crate::jobs::scrub_user(conn, deskd_model::erasure::Erased::new(id, values)).await?;
    }
    crate::credentials::bump_epoch(&mut *conn).await?;
    crate::users::load(conn, id).await
}

/// Users changed at or after `start` (Unix seconds), in (updated_at, id) order, strictly after
/// the `(updated_at, id)` position when given; deleted users included. One row more than `limit`.
pub async fn changed_since(
    conn: &mut AnyConnection,
    start: i64,
    after: Option<(i64, i64)>,
    limit: i64,
) -> Result<Vec<UserRecord>, StoreError> {
    let q = match after {
        None => {
            let sql = format!(
                "SELECT {} FROM users WHERE updated_at >= $1 ORDER BY updated_at, id LIMIT $2",
                rows::USER_COLUMNS
            );
            all(conn, sqlx::query(&sql).bind(start).bind(limit + 1)).await?
        }
        Some((ts, id)) => {
            let sql = format!(
                "SELECT {} FROM users WHERE updated_at >= $1 AND (updated_at > $2 OR (updated_at = $2 AND id > $3)) \
                 ORDER BY updated_at, id LIMIT $4",
                rows::USER_COLUMNS
            );
            all(
                conn,
                sqlx::query(&sql)
                    .bind(start)
                    .bind(ts)
                    .bind(id)
                    .bind(limit + 1),
            )
            .await?
        }
    };
    q.iter().map(rows::user).collect()
}

/// For the time-based export: users changed at or after `start` and at or before `until` (Unix
/// seconds), in (updated_at, id) order, deleted users included; at most `limit` rows.
pub async fn changed_in_window(
    conn: &mut AnyConnection,
    start: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<UserRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM users WHERE updated_at >= $1 AND updated_at <= $2 ORDER BY updated_at, id LIMIT $3",
        rows::USER_COLUMNS
    );
    all(conn, sqlx::query(&sql).bind(start).bind(until).bind(limit))
        .await?
        .iter()
        .map(rows::user)
        .collect()
}

/// Every user changed at exactly `at` with an id above `after_id`, in id order: the rest of a
/// second that a time-based export page must not split.
pub async fn changed_at(
    conn: &mut AnyConnection,
    at: i64,
    after_id: i64,
) -> Result<Vec<UserRecord>, StoreError> {
    let sql = format!(
        "SELECT {} FROM users WHERE updated_at = $1 AND id > $2 ORDER BY id",
        rows::USER_COLUMNS
    );
    all(conn, sqlx::query(&sql).bind(at).bind(after_id))
        .await?
        .iter()
        .map(rows::user)
        .collect()
}
