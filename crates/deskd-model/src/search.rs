//! Zendesk search syntax for users, as far as deskd understands it: `key:value` terms for
//! `email`, `external_id`, `name`, `role`, `organization_id`, `tags` (quoted values allowed,
//! `*` as a wildcard in emails and names), `type:user` (ignored), and bare terms, which match a
//! name or an email address.

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

/// Parses a query; an unknown key, a bad value, or a query beyond the caps is an error naming it.
pub fn parse(query: &str) -> Result<Vec<Term>, String> {
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
        assert!(parse(&"é".repeat(MAX_QUERY_CHARS + 1)).unwrap_err().contains("too long"));
    }
}
