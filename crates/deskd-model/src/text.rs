//! Small text rules shared by every resource: normalisation for uniqueness, Rails-style field names.

/// The form a value takes in a uniqueness index: trimmed and lower-cased.
pub fn normalize(value: &str) -> String {
    value.trim().to_lowercase()
}

/// Rails' `humanize`, which Zendesk uses to prefix validation messages: `organization_id` →
/// `Organization`, `custom_role_id` → `Custom role`, `name` → `Name`.
pub fn humanize(field: &str) -> String {
    let base = field.strip_suffix("_id").unwrap_or(field);
    let spaced = base.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A syntactic check of an email address, as strict as Zendesk's "is not properly formatted":
/// one `@`, a non-empty local part, a dotted domain, no white space or control characters.
pub fn is_valid_email(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() || v.len() > 254 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || local.contains('@') || domain.is_empty() {
        return false;
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanizes_like_rails() {
        assert_eq!(humanize("organization_id"), "Organization");
        assert_eq!(humanize("custom_role_id"), "Custom role");
        assert_eq!(humanize("name"), "Name");
        assert_eq!(humanize("email"), "Email");
    }

    #[test]
    fn emails() {
        for ok in [
            "a@b.co",
            "first.last+tag@sub.example.com",
            "ÜBER@bücher.de",
            " x@y.org ",
        ] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "badmail",
            "a@b",
            "@b.com",
            "a@.com",
            "a b@c.com",
            "a@b..com",
            "a@@b.com",
            ".a@b.com",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize("  Mixed@Case.COM "), "mixed@case.com");
    }
}
