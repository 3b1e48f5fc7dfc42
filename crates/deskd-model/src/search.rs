//! Zendesk search syntax for users and organizations, as far as deskd understands it: `key:value`
//! terms for `email`, `external_id`, `name`, `role`, `organization_id`, `tags` (quoted values
//! allowed, `*` as a wildcard in emails and names), `type:user` (ignored), and bare terms, which
//! match a name or an email address. [`parse_query`] adds the unified search's `type:`, `-`
//! negation, `phone`/`notes`/`details` and `created`/`updated` date comparisons.

use crate::role::Role;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    Email(String),
    ExternalId(String),
    Name(String),
    Role(Role),
    OrganizationId(i64),
    Tag(String),
    /// A bare word: part of a name or an email.
    Any(String),
    /// `phone:`, `notes:`, `details:`: part of that property.
    Phone(String),
    Notes(String),
    Details(String),
    /// `created>2024-01-31`, `updated<=2024-02-01T10:00:00Z`: Unix seconds compared.
    Created(Cmp, i64),
    Updated(Cmp, i64),
}

/// How a date term compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `:` — the same day (at or after the day's start, before the next).
    Day,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Splits a query into words, keeping quoted runs together.
fn words(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in query.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The longest query deskd searches, in characters. Zendesk documents no figure for users
/// search (only 1,000 results a query and 100 a page); this is far beyond any real query and
/// keeps what one request may ask of the database small.
pub const MAX_QUERY_CHARS: usize = 1024;

/// The most terms a query may combine: each is a condition (often a subquery) in one statement.
pub const MAX_TERMS: usize = 32;

/// The query's words, or an error naming the cap a query beyond the caps breaks. Every parser
/// reads its words through this, so no search escapes the caps.
fn capped_words(query: &str) -> Result<Vec<String>, String> {
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(format!(
            "The query is too long: at most {MAX_QUERY_CHARS} characters"
        ));
    }
    let words = words(query);
    if words.len() > MAX_TERMS {
        return Err(format!(
            "The query has {} terms: at most {MAX_TERMS} may be combined",
            words.len()
        ));
    }
    Ok(words)
}

/// Parses a query; an unknown key, a bad value, or a query beyond the caps is an error naming it.
pub fn parse(query: &str) -> Result<Vec<Term>, String> {
    let words = capped_words(query)?;
    let mut terms = Vec::new();
    for word in words {
        let Some((key, value)) = word
            .split_once(':')
            .filter(|(k, _)| !k.is_empty() && !k.contains('@'))
        else {
            terms.push(Term::Any(crate::text::normalize(&word)));
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("{key}: needs a value"));
        }
        let term = match key.to_ascii_lowercase().as_str() {
            "type" if value.eq_ignore_ascii_case("user") => continue,
            "type" => {
                return Err(format!(
                    "type:{value} is not searchable here; use type:user"
                ));
            }
            "email" => Term::Email(crate::text::normalize(value)),
            "external_id" => Term::ExternalId(crate::text::normalize(value)),
            "name" => Term::Name(crate::text::fold(value)),
            "role" => {
                Term::Role(Role::parse(value).ok_or_else(|| format!("role:{value} is not a role"))?)
            }
            "organization_id" | "organization" => Term::OrganizationId(
                value
                    .parse()
                    .map_err(|_| format!("{key}:{value} is not a number"))?,
            ),
            "tags" | "tag" => Term::Tag(value.to_owned()),
            other => return Err(format!("{other} is not a searchable user field")),
        };
        terms.push(term);
    }
    Ok(terms)
}

/// The kinds of record the unified search returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultType {
    User,
    Organization,
    /// Kinds deskd keeps none of (`ticket`, `group`): searching them finds nothing.
    Other,
}

impl ResultType {
    pub fn parse(s: &str) -> Option<ResultType> {
        match s.trim().to_ascii_lowercase().as_str() {
            "user" | "users" => Some(ResultType::User),
            "organization" | "organizations" => Some(ResultType::Organization),
            "ticket" | "tickets" | "group" | "groups" => Some(ResultType::Other),
            _ => None,
        }
    }
}

/// One term of a query, with Zendesk's `-` negation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    pub negated: bool,
    pub term: Term,
}

/// A unified search query (`/search`, `/search/count`, `/search/export`, and `/users/search`):
/// the `type:` it names, if any, and its clauses, all of which must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub result_type: Option<ResultType>,
    pub clauses: Vec<Clause>,
}

impl Query {
    /// The terms that must hold and those that must not.
    pub fn split(&self) -> (Vec<Term>, Vec<Term>) {
        let (neg, pos): (Vec<&Clause>, Vec<&Clause>) = self.clauses.iter().partition(|c| c.negated);
        (
            pos.into_iter().map(|c| c.term.clone()).collect(),
            neg.into_iter().map(|c| c.term.clone()).collect(),
        )
    }
}

/// Parses Zendesk search syntax: words and quoted phrases (a phrase matches as written, spaces
/// included), `key:value`, `key<value` / `>` / `<=` / `>=` for dates, `-` before a term to
/// exclude it, `*` as a wildcard. Keys: `type`, `name`, `email`, `external_id`, `role`,
/// `organization_id`, `tags`, `phone`, `notes`, `details`, `created`, `updated`. An unknown key
/// or a bad value is an error naming it.
pub fn parse_query(query: &str) -> Result<Query, String> {
    let mut q = Query::default();
    for word in capped_words(query)? {
        let (negated, word) = match word.strip_prefix('-') {
            Some(rest) if !rest.is_empty() => (true, rest.to_owned()),
            _ => (false, word),
        };
        if let Some(t) = type_of(&word)? {
            if negated {
                return Err("type: cannot be negated".to_owned());
            }
            if q.result_type.is_some_and(|have| have != t) {
                return Err("a query names one type".to_owned());
            }
            q.result_type = Some(t);
            continue;
        }
        q.clauses.push(Clause {
            negated,
            term: clause_term(&word)?,
        });
    }
    Ok(q)
}

fn type_of(word: &str) -> Result<Option<ResultType>, String> {
    match word.split_once(':') {
        Some((k, v)) if k.eq_ignore_ascii_case("type") => ResultType::parse(v)
            .map(Some)
            .ok_or_else(|| format!("type:{v} is not a searchable type")),
        _ => Ok(None),
    }
}

/// One word (quotes already removed) as a term.
fn clause_term(word: &str) -> Result<Term, String> {
    use crate::text::normalize;
    if let Some((key, cmp, value)) = date_comparison(word) {
        let at = search_date(value).ok_or_else(|| format!("{key}: {value} is not a date"))?;
        return Ok(match key {
            "created" => Term::Created(cmp, at),
            _ => Term::Updated(cmp, at),
        });
    }
    let Some((key, value)) = word
        .split_once(':')
        .filter(|(k, _)| !k.is_empty() && !k.contains('@'))
    else {
        return Ok(Term::Any(normalize(word)));
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("{key}: needs a value"));
    }
    Ok(match key.to_ascii_lowercase().as_str() {
        "email" => Term::Email(normalize(value)),
        "external_id" => Term::ExternalId(normalize(value)),
        "name" => Term::Name(normalize(value)),
        "role" => {
            Term::Role(Role::parse(value).ok_or_else(|| format!("role:{value} is not a role"))?)
        }
        "organization_id" | "organization" => Term::OrganizationId(
            value
                .parse()
                .map_err(|_| format!("{key}:{value} is not a number"))?,
        ),
        "tags" | "tag" => Term::Tag(value.to_owned()),
        "phone" => Term::Phone(normalize(value)),
        "notes" => Term::Notes(normalize(value)),
        "details" => Term::Details(normalize(value)),
        other => return Err(format!("{other} is not a searchable field")),
    })
}

/// `created>2024-01-01` and its kin: the key, the comparison and the value.
fn date_comparison(word: &str) -> Option<(&'static str, Cmp, &str)> {
    let lower = word.to_ascii_lowercase();
    let key = ["created", "updated"]
        .into_iter()
        .find(|k| lower.starts_with(k))?;
    let rest = &word[key.len()..];
    let (cmp, value) = [
        ("<=", Cmp::Le),
        (">=", Cmp::Ge),
        ("<", Cmp::Lt),
        (">", Cmp::Gt),
        (":", Cmp::Day),
    ]
    .into_iter()
    .find_map(|(op, c)| rest.strip_prefix(op).map(|v| (c, v)))?;
    Some((key, cmp, value.trim()))
}

/// `YYYY-MM-DD` (the day's start, UTC) or an RFC 3339 time, as Unix seconds.
fn search_date(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

/// The seconds a `Cmp::Day` term covers.
pub const DAY_SECS: i64 = 86_400;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_quotes_and_bare_words() {
        assert_eq!(
            parse(r#"type:user email:A@B.co name:"Roger Wilco" role:agent organization_id:5 tags:vip roger"#).unwrap(),
            vec![
                Term::Email("a@b.co".into()),
                Term::Name("roger wilco".into()),
                Term::Role(Role::Agent),
                Term::OrganizationId(5),
                Term::Tag("vip".into()),
                Term::Any("roger".into()),
            ]
        );
        assert_eq!(
            parse("roger@example.org").unwrap(),
            vec![Term::Any("roger@example.org".into())]
        );
        assert!(parse("shoe_size:9").is_err());
        assert!(parse("role:boss").is_err());
        assert!(parse("email:").is_err());
    }

    #[test]
    fn caps_terms_and_length() {
        let at_cap = vec!["w"; MAX_TERMS].join(" ");
        assert_eq!(parse(&at_cap).unwrap().len(), MAX_TERMS);
        assert!(parse(&format!("{at_cap} w")).unwrap_err().contains("terms"));
        // Quoted runs are one term each; length counts characters, not bytes.
        assert!(parse(&format!("\"{}\"", "é ".repeat(MAX_QUERY_CHARS / 2 - 1))).is_ok());
        assert!(
            parse(&"é".repeat(MAX_QUERY_CHARS + 1))
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn parses_negation_types_phrases_and_dates() {
        let q = parse_query(r#"type:organization -tags:vip "Acme Corp" created>=2024-01-02 updated:2024-03-04 -spam notes:"big deal""#).unwrap();
        assert_eq!(q.result_type, Some(ResultType::Organization));
        assert_eq!(
            q.clauses,
            vec![
                Clause {
                    negated: true,
                    term: Term::Tag("vip".into())
                },
                Clause {
                    negated: false,
                    term: Term::Any("acme corp".into())
                },
                Clause {
                    negated: false,
                    term: Term::Created(Cmp::Ge, 1_704_153_600)
                },
                Clause {
                    negated: false,
                    term: Term::Updated(Cmp::Day, 1_709_510_400)
                },
                Clause {
                    negated: true,
                    term: Term::Any("spam".into())
                },
                Clause {
                    negated: false,
                    term: Term::Notes("big deal".into())
                },
            ]
        );
        let (pos, neg) = q.split();
        assert_eq!((pos.len(), neg.len()), (4, 2));
        assert_eq!(
            parse_query("type:ticket").unwrap().result_type,
            Some(ResultType::Other)
        );
        assert_eq!(
            parse_query("-").unwrap().clauses[0].term,
            Term::Any("-".into())
        );
        for bad in [
            "type:spaceship",
            "-type:user",
            "type:user type:organization",
            "created>yesterday",
            "shoe:9",
        ] {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
        assert!(parse_query("type:user TYPE:users").is_ok());
    }
}
