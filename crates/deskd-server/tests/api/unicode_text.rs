//! One address however it is spelled (NFC, full case folding, IDNA domains), invisible
//! characters refused in emails, and non-ASCII names searched case-insensitively on both
//! backends.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    spellings_of_one_address_are_one_user,
    invisible_characters_in_emails_are_422,
    non_ascii_names_match_case_insensitively,
);

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn spellings_of_one_address_are_one_user(app: TestApp) {
    for (first, second) in [
        ("jos\u{e9}@example.com", "jose\u{301}@EXAMPLE.com"),
        (
            "\u{39f}\u{394}\u{39f}\u{3a3}@example.gr",
            "\u{3bf}\u{3b4}\u{3bf}\u{3c3}@example.gr",
        ),
        ("stra\u{df}e@example.de", "STRASSE@example.de"),
        (
            "x@\u{ff42}\u{fc}\u{ff43}\u{ff48}\u{ff45}\u{ff52}.de",
            "x@xn--bcher-kva.de",
        ),
        ("y@b\u{fc}cher.de", "Y@B\u{dc}CHER.DE"),
    ] {
        let r = app.upsert(json!({"name": "First", "email": first})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{first}: {}", r.text);
        let id = r.body["user"]["id"].as_i64().unwrap();
        let r = app.upsert(json!({"name": "Second", "email": second})).await;
        assert_eq!(r.status, StatusCode::OK, "{second} is {first}: {}", r.text);
        assert_eq!(r.body["user"]["id"], id, "{second} is {first}");
        // And a second user cannot take it as an identity either.
        let other = app
            .make_user("Other", &format!("other{id}@example.org"), "end-user")
            .await;
        let r = app
            .post(
                &format!("/api/v2/users/{other}/identities"),
                json!({"identity": {"type": "email", "value": second}}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{second}: {}",
            r.text
        );
        // Search by either spelling finds the one user.
        let r = app
            .get(&format!(
                "/api/v2/users/search?query={}",
                enc(&format!("email:{second}"))
            ))
            .await;
        assert_eq!(r.body["count"], 1, "{second}: {}", r.text);
    }
}

async fn invisible_characters_in_emails_are_422(app: TestApp) {
    let before = app.table_counts().await;
    for bad in [
        "ro\u{200b}ger@example.com",
        "roger@exa\u{200d}mple.com",
        "\u{feff}roger@example.com",
        "ro\u{202e}ger@example.com",
        "ro(ger)@example.com",
    ] {
        let r = app.upsert(json!({"name": "Bad", "email": bad})).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?}: {}",
            r.text
        );
        let d = r.body["details"]["email"][0]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(
            d.contains("is not properly formatted"),
            "{bad:?}: {}",
            r.text
        );
    }
    assert_eq!(app.table_counts().await, before, "nothing written");
}

async fn non_ascii_names_match_case_insensitively(app: TestApp) {
    let id = app
        .make_user("\u{c9}mile \u{17d}ola", "emile@example.org", "end-user")
        .await;
    for q in [
        "\u{e9}mile",
        "\u{c9}MILE",
        "name:\u{e9}mile",
        "name:\"\u{e9}mile \u{17e}ola\"",
        "\u{17d}OLA",
        "\u{17e}ola",
        "e\u{301}mile",
    ] {
        let r = app
            .get(&format!("/api/v2/users/search?query={}", enc(q)))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text);
        assert_eq!(r.body["count"], 1, "{q}: {}", r.text);
        assert_eq!(r.body["users"][0]["id"], id, "{q}");
    }
    let r = app
        .get(&format!(
            "/api/v2/users/autocomplete?name={}",
            enc("\u{e9}MI")
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["users"][0]["id"], id, "{}", r.text);
}
