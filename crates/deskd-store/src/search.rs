//! The unified search's reads: organizations by search terms, and the export's pages of users
//! and organizations in (created_at, id) order. Users by terms are `user_queries`' filter.

use deskd_model::organization::OrganizationRecord;
use deskd_model::search::Term;
use deskd_model::user::UserRecord;
use sqlx::AnyConnection;

use crate::StoreError;
use crate::rows::{self, Params, all, first, int};
use crate::user_queries::{Arg, SORT_COLUMNS, UserFilter, bind, date_sql, like, like_literal};

/// Which organizations a search wants: every term holds, no excluded one does.
#[derive(Clone, Debug, Default)]
pub struct OrgFilter {
    pub terms: Vec<Term>,
    pub excluded: Vec<Term>,
    /// As [`UserFilter::sort`].
    pub sort: Option<(&'static str, bool)>,
}

/// One term's condition on an organization row. Terms about users only (`email`, `role`,
/// `phone`, `organization_id`) match no organization.
fn term_sql(p: &mut Params, term: &Term) -> (String, Vec<Arg>) {
    let contains = |p: &mut Params, col: &str, w: &str| {
        (
            format!("lower(COALESCE({col}, '')) LIKE {} ESCAPE '\\'", p.one()),
            vec![Arg::Text(like(w))],
        )
    };
    match term {
        Term::Name(n) => contains(p, "name", n),
        Term::ExternalId(e) => (
            format!("external_id_norm = {}", p.one()),
            vec![Arg::Text(e.clone())],
        ),
        Term::Tag(t) => (
            format!("tags LIKE {} ESCAPE '\\'", p.one()),
            vec![Arg::Text(format!(
                "%{}%",
                like_literal(&serde_json::Value::String(t.clone()).to_string())
            ))],
        ),
        Term::Notes(w) => contains(p, "notes", w),
        Term::Details(w) => contains(p, "details", w),
        Term::Created(cmp, at) => date_sql(p, "created_at", *cmp, *at),
        Term::Updated(cmp, at) => date_sql(p, "updated_at", *cmp, *at),
        // A bare word: part of the name, details, notes or a domain name.
        Term::Any(w) => {
            let (a, b, c, d) = (p.one(), p.one(), p.one(), p.one());
            (
                format!(
                    "(lower(name) LIKE {a} ESCAPE '\\' OR lower(COALESCE(details, '')) LIKE {b} ESCAPE '\\' \
                     OR lower(COALESCE(notes, '')) LIKE {c} ESCAPE '\\' OR lower(domain_names) LIKE {d} ESCAPE '\\')"
                ),
                (0..4).map(|_| Arg::Text(like(w))).collect(),
            )
        }
        Term::Email(_) | Term::Role(_) | Term::OrganizationId(_) | Term::Phone(_) => {
            ("1 = 0".to_owned(), Vec::new())
        }
    }
}

fn org_where(p: &mut Params, filter: &OrgFilter) -> (String, Vec<Arg>) {
    let mut parts = vec!["1 = 1".to_owned()];
    let mut args = Vec::new();
    for t in &filter.terms {
        let (sql, a) = term_sql(p, t);
        parts.push(sql);
        args.extend(a);
    }
    for t in &filter.excluded {
        let (sql, a) = term_sql(p, t);
        parts.push(format!("NOT ({sql})"));
        args.extend(a);
    }
    (parts.join(" AND "), args)
}

fn order(sort: Option<(&'static str, bool)>) -> String {
    match sort {
        Some((col, desc)) if SORT_COLUMNS.contains(&col) => {
            let dir = if desc { "DESC" } else { "ASC" };
            format!("{col} {dir}, id {dir}")
        }
        _ => "id".to_owned(),
    }
}

pub async fn count_organizations(
    conn: &mut AnyConnection,
    filter: &OrgFilter,
) -> Result<i64, StoreError> {
    let mut p = Params::new(conn);
    let (clause, args) = org_where(&mut p, filter);
    let sql = format!("SELECT COUNT(*) AS n FROM organizations WHERE {clause}");
    let row = first(conn, bind(sqlx::query(&sql), args)).await?;
    Ok(row.map(|r| int(&r, "n")).transpose()?.unwrap_or(0))
}

/// An offset page of matching organizations in the filter's order.
pub async fn organizations(
    conn: &mut AnyConnection,
    filter: &OrgFilter,
    offset: i64,
    limit: i64,
) -> Result<Vec<OrganizationRecord>, StoreError> {
    let mut p = Params::new(conn);
    let (clause, mut args) = org_where(&mut p, filter);
    let sql = format!(
        "SELECT {} FROM organizations WHERE {clause} ORDER BY {} LIMIT {} OFFSET {}",
        rows::ORGANIZATION_COLUMNS,
        order(filter.sort),
        p.one(),
        p.one()
    );
    args.push(Arg::Int(limit));
    args.push(Arg::Int(offset));
    all(conn, bind(sqlx::query(&sql), args))
        .await?
        .iter()
        .map(rows::organization)
        .collect()
}

/// The export's order: `(created_at, id)` strictly after `after`; one row more than `limit` so
/// the caller can tell whether there is more.
fn after_clause(p: &mut Params, after: Option<(i64, i64)>, args: &mut Vec<Arg>) -> String {
    match after {
        None => String::new(),
        Some((at, id)) => {
            let (a, b, c) = (p.one(), p.one(), p.one());
            args.extend([Arg::Int(at), Arg::Int(at), Arg::Int(id)]);
            format!(" AND (created_at > {a} OR (created_at = {b} AND id > {c}))")
        }
    }
}

pub async fn export_users(
    conn: &mut AnyConnection,
    filter: &UserFilter,
    after: Option<(i64, i64)>,
    limit: i64,
) -> Result<Vec<UserRecord>, StoreError> {
    let mut p = Params::new(conn);
    let (clause, mut args) = crate::user_queries::where_clause(&mut p, filter);
    let after = after_clause(&mut p, after, &mut args);
    let sql = format!(
        "SELECT {} FROM users WHERE {clause}{after} ORDER BY created_at, id LIMIT {}",
        rows::USER_COLUMNS,
        p.one()
    );
    args.push(Arg::Int(limit + 1));
    all(conn, bind(sqlx::query(&sql), args))
        .await?
        .iter()
        .map(rows::user)
        .collect()
}

pub async fn export_organizations(
    conn: &mut AnyConnection,
    filter: &OrgFilter,
    after: Option<(i64, i64)>,
    limit: i64,
) -> Result<Vec<OrganizationRecord>, StoreError> {
    let mut p = Params::new(conn);
    let (clause, mut args) = org_where(&mut p, filter);
    let after = after_clause(&mut p, after, &mut args);
    let sql = format!(
        "SELECT {} FROM organizations WHERE {clause}{after} ORDER BY created_at, id LIMIT {}",
        rows::ORGANIZATION_COLUMNS,
        p.one()
    );
    args.push(Arg::Int(limit + 1));
    all(conn, bind(sqlx::query(&sql), args))
        .await?
        .iter()
        .map(rows::organization)
        .collect()
}
