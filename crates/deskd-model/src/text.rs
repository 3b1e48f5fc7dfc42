//! Small text rules shared by every resource: normalisation for uniqueness, Rails-style field names.

use unicode_normalization::UnicodeNormalization;

/// A value folded for case-insensitive comparison: trimmed, NFC-normalised and case-folded, so
/// that composed and decomposed `é` are one letter and `ΟΔΟΣ`, `οδος` and `οδοσ` one word.
/// Full case folding is taken as upper- then lower-casing (which folds `ß` to `ss` and the
/// ligatures to their letters) with final sigma folded to `σ`; then NFC again, since case
/// mapping can leave a sequence that is no longer composed.
pub fn fold(value: &str) -> String {
    let value = value.trim();
    // ASCII is already NFC and folds as it lower-cases: the common case takes no Unicode tables.
    if value.is_ascii() {
        return value.to_ascii_lowercase();
    }
    let composed: String = value.nfc().collect();
    let folded: String = if composed.is_ascii() {
        composed.to_ascii_lowercase()
    } else {
        composed
            .to_uppercase()
            .to_lowercase()
            .chars()
            .map(|c| if c == 'ς' { 'σ' } else { c })
            .collect()
    };
    if folded.is_ascii() {
        folded
    } else {
        folded.nfc().collect()
    }
}

/// The form a value takes in a uniqueness index (identities, external ids, organization names):
/// [`fold`]ed, and an address's domain (after the last `@`) in its IDNA (UTS 46) ASCII form, so
/// that `bücher.de`, `BÜCHER.de`, fullwidth `ｂüｃｈｅｒ.de` and `xn--bcher-kva.de` are one domain.
/// A domain IDNA refuses is left as folded (such an email never passes [`is_valid_email`]).
pub fn normalize(value: &str) -> String {
    let folded = fold(value);
    match folded.rsplit_once('@') {
        Some((local, domain)) if !domain.is_ascii() || domain.contains("xn--") => {
            match idna::domain_to_ascii(domain) {
                Ok(ascii) if !ascii.is_empty() => format!("{local}@{ascii}"),
                _ => folded,
            }
        }
        _ => folded,
    }
}

/// Unicode's format characters (general category Cf: zero-width space and joiners, bidi
/// controls, the soft hyphen, the BOM, tags...): invisible, so an address holding one looks like
/// another and is refused.
fn is_format_char(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
}

/// Characters an unquoted local part may hold (RFC 5322 `atext` and the dot, and with RFC 6531
/// any non-ASCII character that is neither a control, a format character, nor white space).
fn local_char_ok(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
    } else {
        !c.is_control() && !c.is_whitespace() && !is_format_char(c) && !is_private_or_unassigned(c)
    }
}

/// Private-use code points and noncharacters: no mail system assigns them meaning.
fn is_private_or_unassigned(c: char) -> bool {
    let n = c as u32;
    matches!(n, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFDD0..=0xFDEF) || (n & 0xFFFE) == 0xFFFE
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
/// one `@`; a local part of RFC 5322 `atext` and dots (RFC 6531: non-ASCII letters too), without
/// controls, white space or invisible format characters; a dotted domain that IDNA (UTS 46, with
/// the STD3 rules of host names) accepts.
pub fn is_valid_email(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() || v.len() > 254 || v.chars().any(|c| c.is_control() || is_format_char(c)) {
        return false;
    }
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || domain.is_empty() {
        return false;
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return false;
    }
    if !local.chars().all(local_char_ok) {
        return false;
    }
    if domain
        .chars()
        .any(|c| c.is_whitespace() || is_private_or_unassigned(c))
    {
        return false;
    }
    plain_ascii_domain(domain) || idna_domain_ok(domain)
}

/// A domain of two or more labels of ASCII letters, digits and inner hyphens (1–63 each, none
/// with `--` in the third and fourth places, so no `xn--`), 253 bytes at most: the common case,
/// which UTS 46 would only lowercase, so it is valid without running it (IDNA costs more than
/// the rest of a user's input). Anything else is for [`idna_domain_ok`] to judge.
fn plain_ascii_domain(domain: &str) -> bool {
    domain.len() <= 253
        && domain.split('.').count() >= 2
        && domain.split('.').all(|l| {
            let b = l.as_bytes();
            (1..=63).contains(&b.len())
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
                && b.get(2..4) != Some(b"--")
        })
}

/// The domain after UTS 46 (strict: STD3 characters, hyphen rules, DNS lengths) is two or more
/// labels of letters, digits and inner hyphens.
fn idna_domain_ok(domain: &str) -> bool {
    let Ok(ascii) = idna::domain_to_ascii_strict(domain) else {
        return false;
    };
    let labels: Vec<&str> = ascii.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// The fast path never accepts what UTS 46 would refuse.
        #[test]
        fn plain_ascii_domains_are_valid_by_idna_too(
            d in "([a-zA-Z0-9-]{0,8}\\.){0,4}[a-zA-Z0-9-]{0,8}|x[nN]--[a-z0-9-]{0,6}\\.[a-z]{1,3}|[a-z]{60,70}\\.[a-z]{2,3}"
        ) {
            if plain_ascii_domain(&d) {
                proptest::prop_assert!(idna_domain_ok(&d), "{d}");
            }
        }
    }

    #[test]
    fn plain_ascii_domain_edges() {
        assert!(plain_ascii_domain("example.org"));
        assert!(plain_ascii_domain("Mail.Example-1.ORG"));
        for d in [
            "example",
            "-a.org",
            "a-.org",
            "ab--c.org",
            "xn--nxasmq6b.com",
            "a..org",
            ".a.org",
            "a.org.",
        ] {
            assert!(!plain_ascii_domain(d), "{d}");
        }
        assert!(!plain_ascii_domain(&format!("{}.org", "a".repeat(64))));
        assert!(plain_ascii_domain(&format!("{}.org", "a".repeat(63))));
        // What the fast path leaves to IDNA is still judged by it.
        assert!(is_valid_email("a@xn--nxasmq6b.com"));
        assert!(is_valid_email("a@bücher.de"));
        assert!(!is_valid_email("a@ab--c.org"));
    }

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

    #[test]
    fn one_address_however_spelled() {
        let same = |a: &str, b: &str| assert_eq!(normalize(a), normalize(b), "{a} vs {b}");
        same("jos\u{e9}@example.com", "jose\u{301}@example.com");
        same("ΟΔΟΣ@example.gr", "οδοσ@example.gr");
        same("ΟΔΟΣ@example.gr", "οδος@example.gr");
        same("straße@example.de", "STRASSE@example.de");
        same("x@bücher.de", "x@xn--bcher-kva.de");
        same("x@BÜCHER.DE", "x@bücher.de");
        same(
            "x@\u{ff42}\u{fc}\u{ff43}\u{ff48}\u{ff45}\u{ff52}.de",
            "x@bücher.de",
        );
        assert_ne!(normalize("a@example.com"), normalize("b@example.com"));
        // Folding alone for what has no address.
        assert_eq!(fold(" Ünïcödé "), fold("ÜNÏCÖDÉ"));
    }

    #[test]
    fn emails_with_invisible_or_foreign_characters_are_refused() {
        for bad in [
            "ro\u{200b}ger@example.com",
            "roger@exa\u{200b}mple.com",
            "roger\u{feff}@example.com",
            "ro\u{202e}ger@example.com",
            "a\u{7}@example.com",
            "a(b)@example.com",
            "a,b@example.com",
            "a\\b@example.com",
            "a@exa_mple.com",
            "\u{e000}@example.com",
            "a@b\u{e000}.com",
        ] {
            assert!(!is_valid_email(bad), "{bad:?}");
        }
        for ok in [
            "jos\u{e9}@example.com",
            "δοκιμή@παράδειγμα.δοκιμή",
            "用户@例子.广告",
            "x@xn--bcher-kva.de",
            "o'brien+tag@example.ie",
        ] {
            assert!(is_valid_email(ok), "{ok}");
        }
    }
}
