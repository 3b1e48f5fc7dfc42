//! Zendesk's two pagination styles.
//!
//! Offset (the default): `page` (1-based) and `per_page` (at most 100); `next_page` /
//! `previous_page` absolute URLs and a `count`; requests beyond the first 10,000 records are 400.
//! Cursor (when `page[size]`, `page[after]` or `page[before]` is given): `meta.has_more`,
//! `after_cursor`, `before_cursor` and `links.next` / `links.prev`. Like Zendesk, the last
//! non-empty page still links to the next one, which comes back empty with null links: clients
//! that follow `links.next` without reading `has_more` stop there.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};

use crate::error::ApiError;

pub const MAX_PER_PAGE: i64 = 100;
/// Offset pagination reaches the first 10,000 records only.
pub const OFFSET_CAP: i64 = 10_000;

pub enum Paging {
    Offset {
        page: i64,
        per_page: i64,
    },
    Cursor {
        size: i64,
        after: Option<i64>,
        before: Option<i64>,
    },
}

fn bad(description: impl Into<String>) -> ApiError {
    ApiError::bad_request("InvalidPaginationParameter", description)
}

fn number(params: &BTreeMap<String, String>, key: &str) -> Result<Option<i64>, ApiError> {
    match params.get(key) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad(format!("{key} must be a whole number"))),
    }
}

/// The one cursor encoding: a position (any serialisable key) as URL-safe base64 of its JSON.
/// Opaque to clients, as Zendesk's cursors are.
pub fn encode_position(key: &impl serde::Serialize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(key).unwrap_or_default())
}

/// Reads a cursor made by [`encode_position`]; `None` for anything else.
pub fn decode_position<T: serde::de::DeserializeOwned>(raw: &str) -> Option<T> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A users or organizations page position: after (or before) this id.
#[derive(serde::Serialize, serde::Deserialize)]
struct ById {
    o: String,
    v: i64,
}

pub fn encode_cursor(id: i64) -> String {
    encode_position(&ById {
        o: "id".to_owned(),
        v: id,
    })
}

fn decode_cursor(raw: &str) -> Result<i64, ApiError> {
    decode_position::<ById>(raw)
        .map(|c| c.v)
        .ok_or_else(|| bad("the page cursor is not valid"))
}

impl Paging {
    pub fn from_query(params: &BTreeMap<String, String>) -> Result<Paging, ApiError> {
        let cursor = ["page[size]", "page[after]", "page[before]"]
            .iter()
            .any(|k| params.contains_key(*k));
        if cursor {
            let size = number(params, "page[size]")?.unwrap_or(MAX_PER_PAGE);
            if !(1..=MAX_PER_PAGE).contains(&size) {
                return Err(bad("page[size] must be between 1 and 100"));
            }
            let after = params
                .get("page[after]")
                .filter(|s| !s.is_empty())
                .map(|s| decode_cursor(s))
                .transpose()?;
            let before = params
                .get("page[before]")
                .filter(|s| !s.is_empty())
                .map(|s| decode_cursor(s))
                .transpose()?;
            if after.is_some() && before.is_some() {
                return Err(bad("give page[after] or page[before], not both"));
            }
            return Ok(Paging::Cursor {
                size,
                after,
                before,
            });
        }
        // Offset parameters are read as Rails' `to_i` reads them: nonsense is the default and
        // per_page is clamped to 1..=100 (Zendesk answers per_page=1000 with 100 records).
        let lenient = |key: &str, default: i64| {
            params
                .get(key)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(default)
        };
        let page = lenient("page", 1).max(1);
        let per_page = lenient("per_page", MAX_PER_PAGE).clamp(1, MAX_PER_PAGE);
        // Saturating: `page=9223372036854775807` is past the cap, not an overflow.
        if (page - 1).saturating_mul(per_page) >= OFFSET_CAP {
            return Err(bad(
                "Offset pagination is limited to the first 10,000 records; use cursor pagination (page[size])",
            ));
        }
        Ok(Paging::Offset { page, per_page })
    }
}

/// `path` with `params` plus `extra` as its query, for a `next_page` or link URL.
pub fn url(
    base: &str,
    path: &str,
    params: &BTreeMap<String, String>,
    extra: &[(&str, String)],
) -> String {
    let mut q = url_encode_pairs(
        params
            .iter()
            .filter(|(k, _)| !k.starts_with("page") && *k != "per_page")
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    for (k, v) in extra {
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str(&url_encode_pairs([(*k, v.as_str())]));
    }
    format!("{base}{path}.json?{q}")
}

fn url_encode_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A list read by id ascending that pages by offset, or forwards by cursor (`page[after]`);
/// each row is its id and its wire form.
pub trait ForwardsList {
    fn count(&mut self) -> impl Future<Output = Result<i64, ApiError>> + Send;
    fn offset(
        &mut self,
        offset: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<(i64, Value)>, ApiError>> + Send;
    fn after(
        &mut self,
        id: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<(i64, Value)>, ApiError>> + Send;
}

/// Where a list is served: its key in the body, and the base, path and query its links repeat.
pub struct Listing<'a> {
    pub key: &'a str,
    pub base: &'a str,
    pub path: &'a str,
    pub query: &'a BTreeMap<String, String>,
}

/// The page of `list` that `listing.query` asks for; `page[before]` is refused (forwards only).
pub async fn forwards_page(
    listing: &Listing<'_>,
    list: &mut impl ForwardsList,
) -> Result<Value, ApiError> {
    let Listing {
        key,
        base,
        path,
        query,
    } = *listing;
    match Paging::from_query(query)? {
        Paging::Offset { page, per_page } => {
            let count = list.count().await?;
            let rows = list.offset((page - 1) * per_page, per_page).await?;
            let items = rows.into_iter().map(|(_, v)| v).collect();
            Ok(offset_body(
                key, items, count, page, per_page, base, path, query,
            ))
        }
        Paging::Cursor {
            before: Some(_), ..
        } => Err(bad(format!(
            "{} page forwards only (page[after])",
            key.replace('_', " ")
        ))),
        Paging::Cursor { size, after, .. } => {
            let mut rows = list.after(after.unwrap_or(0), size + 1).await?;
            let has_more = rows.len() as i64 > size;
            rows.truncate(size as usize);
            let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
            let items = rows.into_iter().map(|(_, v)| v).collect();
            Ok(cursor_body(
                key, items, &ids, has_more, size, base, path, query,
            ))
        }
    }
}

/// The body of an offset page.
pub fn offset_body(
    key: &str,
    items: Vec<Value>,
    count: i64,
    page: i64,
    per_page: i64,
    base: &str,
    path: &str,
    params: &BTreeMap<String, String>,
) -> Value {
    let reachable = count.min(OFFSET_CAP);
    let next = (page * per_page < reachable).then(|| {
        url(
            base,
            path,
            params,
            &[
                ("page", (page + 1).to_string()),
                ("per_page", per_page.to_string()),
            ],
        )
    });
    let prev = (page > 1).then(|| {
        url(
            base,
            path,
            params,
            &[
                ("page", (page - 1).to_string()),
                ("per_page", per_page.to_string()),
            ],
        )
    });
    json!({ key: items, "next_page": next, "previous_page": prev, "count": count })
}

/// The body of a cursor page. `ids` are the ids of `items`; `has_more` whether rows lie beyond.
pub fn cursor_body(
    key: &str,
    items: Vec<Value>,
    ids: &[i64],
    has_more: bool,
    size: i64,
    base: &str,
    path: &str,
    params: &BTreeMap<String, String>,
) -> Value {
    let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
        return json!({ key: [], "meta": {"has_more": false, "after_cursor": null, "before_cursor": null}, "links": {"prev": null, "next": null} });
    };
    let (after, before) = (encode_cursor(*last), encode_cursor(*first));
    let size_s = size.to_string();
    json!({
        key: items,
        "meta": {"has_more": has_more, "after_cursor": after, "before_cursor": before},
        "links": {
            "prev": url(base, path, params, &[("page[before]", before.clone()), ("page[size]", size_s.clone())]),
            "next": url(base, path, params, &[("page[after]", after.clone()), ("page[size]", size_s)]),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn styles_and_limits() {
        assert!(matches!(
            Paging::from_query(&q(&[])).unwrap(),
            Paging::Offset {
                page: 1,
                per_page: 100
            }
        ));
        assert!(matches!(
            Paging::from_query(&q(&[("page[size]", "10")])).unwrap(),
            Paging::Cursor { size: 10, .. }
        ));
        assert!(Paging::from_query(&q(&[("page[size]", "101")])).is_err());
        assert!(Paging::from_query(&q(&[("page[after]", "garbage!")])).is_err());
        assert!(Paging::from_query(&q(&[("page", "101")])).is_err());
        assert!(matches!(
            Paging::from_query(&q(&[("page", "x"), ("per_page", "1000")])).unwrap(),
            Paging::Offset {
                page: 1,
                per_page: 100
            }
        ));
        assert!(Paging::from_query(&q(&[("page", "100")])).is_ok());
        let c = encode_cursor(42);
        assert_eq!(decode_cursor(&c).unwrap(), 42);
    }
}
