//! Fuzzing the input readers with proptest, in the normal suite (bounded case counts): whatever
//! JSON a client sends, every reader answers Ok or a validation error, never a panic, and the
//! search parser either parses or names the problem. Raise the case count to fuzz longer:
//! `PROPTEST_CASES=100000 cargo test -p deskd-model --test fuzz_readers`.

use deskd_model::Role;
use deskd_model::identity::IdentityChange;
use deskd_model::input::UserInput;
use deskd_model::membership::MembershipInput;
use deskd_model::organization_input::OrganizationInput;
use deskd_model::role::Actor;
use deskd_model::upsert::{Facts, plan};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Strings that have broken readers elsewhere: NUL, invisible and combining characters,
/// surrogate-adjacent code points, long runs, numbers as text, wildcards and quotes.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        ".{0,12}",
        Just("\u{0}".to_owned()),
        Just("a\u{200b}@b.co".to_owned()),
        Just("e\u{301}".to_owned()),
        Just("\u{fffd}\u{ffff}\u{10ffff}".to_owned()),
        Just("9223372036854775808".to_owned()),
        Just("-1".to_owned()),
        Just("*\\%_\"".to_owned()),
        Just("x".repeat(70_000)),
        Just("user@example.com".to_owned()),
        Just("end-user".to_owned()),
        Just("admin".to_owned()),
    ]
}

/// Keys the readers know, and others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "name",
            "email",
            "external_id",
            "role",
            "custom_role_id",
            "organization_id",
            "organization",
            "identities",
            "tags",
            "user_fields",
            "phone",
            "verified",
            "suspended",
            "details",
            "notes",
            "locale",
            "locale_id",
            "time_zone",
            "default_group_id",
            "alias",
            "signature",
            "moderator",
            "shared_phone_number",
            "skip_verify_email",
            "type",
            "value",
            "primary",
            "user_id",
            "default",
            "domain_names",
            "group_id",
            "shared_tickets",
            "organization_fields",
            "ticket_restriction",
            "only_private_comments",
            "photo",
            "remote_photo_url",
            "password",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,8}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        tricky_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((key(), json_value()), 0..12).prop_map(|kv| kv.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn readers_never_panic(obj in object()) {
        // Each reader answers; a user that reads is also planned (for each role, as a create and
        // as an update of nobody in particular) without panicking.
        if let Ok(input) = UserInput::from_json(&obj) {
            for role in [Role::EndUser, Role::Agent, Role::Admin] {
                let _ = plan(&input, Actor { user_id: 1, role }, &Facts::default(), 1_700_000_000);
            }
        }
        let _ = OrganizationInput::from_json(&obj, false);
        let _ = OrganizationInput::from_json(&obj, true);
        let _ = MembershipInput::from_json(&obj);
        let _ = IdentityChange::from_json(&obj, true, None);
        let _ = IdentityChange::from_json(&obj, false, Some("email"));
        let _ = deskd_model::tags::read(&obj);
    }

    #[test]
    fn search_parser_parses_or_names_the_problem(q in prop_oneof![
        "\\PC{0,64}",
        prop::collection::vec(prop_oneof![key(), tricky_string()], 0..40)
            .prop_map(|w| w.chunks(2).map(|c| c.join(":")).collect::<Vec<_>>().join(" ")),
    ]) {
        match deskd_model::search::parse(&q) {
            Ok(terms) => prop_assert!(terms.len() <= deskd_model::search::MAX_TERMS),
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn text_rules_never_panic(s in tricky_string()) {
        let n = deskd_model::text::normalize(&s);
        // Normalising is idempotent: the form in an index stays put.
        prop_assert_eq!(deskd_model::text::normalize(&n), n);
        let _ = deskd_model::text::is_valid_email(&s);
        let _ = deskd_model::tags::read_query(&s);
    }
}
