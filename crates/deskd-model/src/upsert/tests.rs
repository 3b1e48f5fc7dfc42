use super::*;
use crate::identity::IdentityRecord;
use proptest::prelude::*;
use serde_json::json;

const ADMIN: Actor = Actor {
    user_id: 1,
    role: Role::Admin,
};
const AGENT: Actor = Actor {
    user_id: 2,
    role: Role::Agent,
};

fn input(v: Value) -> UserInput {
    UserInput::from_json(v.as_object().unwrap()).unwrap()
}

fn existing(id: i64, role: Role, email: &str) -> (UserRecord, Vec<IdentityRecord>) {
    let mut u = UserRecord::new("Old".into(), role, 100);
    u.id = id;
    u.email = Some(email.into());
    let ident = IdentityRecord {
        id: 9,
        user_id: id,
        kind: "email".into(),
        value: email.into(),
        verified: false,
        primary: true,
        created_at: 100,
        updated_at: 100,
    };
    (u, vec![ident])
}

#[test]
fn resolve_prefers_id_then_external_id_then_email() {
    let i = input(json!({"id": 5, "external_id": "x", "email": "a@b.co"}));
    assert_eq!(resolve(&i, Some(true), Some(6), Some(7)), Target::Id(5));
    assert_eq!(
        resolve(&i, Some(false), Some(6), Some(7)),
        Target::UnknownId
    );
    let i = input(json!({"external_id": "x", "email": "a@b.co"}));
    assert_eq!(resolve(&i, None, Some(6), Some(7)), Target::ExternalId(6));
    assert_eq!(resolve(&i, None, None, Some(7)), Target::Email(7));
    assert_eq!(resolve(&i, None, None, None), Target::New);
}

#[test]
fn create_makes_email_primary_and_adds_identities() {
    let i = input(json!({"name": "N", "email": "A@b.co", "identities": [
        {"type": "email", "value": "a@B.co"}, {"type": "email", "value": "c@d.co"}, {"type": "twitter", "value": "@n"}]}));
    let p = plan(&i, ADMIN, &Facts::default(), 10).unwrap();
    assert!(p.created);
    assert_eq!(p.user.email.as_deref(), Some("A@b.co"));
    let got: Vec<(&str, &str, bool)> = p
        .new_identities
        .iter()
        .map(|n| (n.kind.as_str(), n.value.as_str(), n.primary))
        .collect();
    assert_eq!(
        got,
        [
            ("email", "A@b.co", true),
            ("email", "c@d.co", false),
            ("twitter", "@n", true)
        ]
    );
    assert_eq!(p.user.role, Role::EndUser);
}

#[test]
fn create_without_name_is_invalid() {
    let e = plan(
        &input(json!({"email": "a@b.co"})),
        ADMIN,
        &Facts::default(),
        0,
    )
    .unwrap_err();
    let Rejection::Invalid(v) = e else { panic!() };
    assert_eq!(
        v.fields[0].1.description,
        "Name: is too short (minimum is 1 characters)"
    );
}

#[test]
fn email_owned_by_another_user_is_a_duplicate() {
    let i = input(json!({"external_id": "x", "email": "taken@b.co"}));
    let facts = Facts {
        existing: Some(existing(1, Role::EndUser, "mine@b.co")),
        identity_owners: vec![(IdentityKey::new("email", "taken@b.co"), 2)],
        ..Facts::default()
    };
    let Rejection::Invalid(v) = plan(&i, ADMIN, &facts, 0).unwrap_err() else {
        panic!()
    };
    assert_eq!(
        v.details(),
        json!({"email": [{"description": "Email: taken@b.co is already being used by another user", "error": "DuplicateValue"}]})
    );
}

#[test]
fn update_adds_secondary_email_and_merges() {
    let mut ex = existing(1, Role::EndUser, "a@b.co");
    ex.0.tags = vec!["t1".into(), "t2".into()];
    ex.0.user_fields.insert("keep".into(), json!(1));
    ex.0.user_fields.insert("drop".into(), json!(2));
    let i = input(
        json!({"email": "new@b.co", "tags": ["t3", "t2"], "user_fields": {"drop": null, "add": "x"}}),
    );
    let defined: Vec<_> = ["keep", "drop", "add"]
        .iter()
        .map(|k| {
            let f =
                crate::custom_field::read_input(json!({"key": k, "title": k}).as_object().unwrap())
                    .unwrap();
            crate::custom_field::plan_create(crate::custom_field::Resource::User, &f, &[], 0)
                .unwrap()
        })
        .collect();
    let facts = Facts {
        existing: Some(ex),
        user_fields: defined.into(),
        ..Facts::default()
    };
    let p = plan(&i, ADMIN, &facts, 200).unwrap();
    assert!(!p.created && p.changed);
    assert_eq!(p.user.email.as_deref(), Some("a@b.co"));
    assert_eq!(
        p.new_identities,
        [NewIdentity {
            kind: "email".into(),
            value: "new@b.co".into(),
            verified: false,
            primary: false
        }]
    );
    assert_eq!(p.user.tags, ["t2", "t3"]);
    assert_eq!(
        Value::Object(p.user.user_fields.clone()),
        json!({"keep": 1, "add": "x"})
    );
    assert_eq!(p.user.updated_at, 200);
}

#[test]
fn user_field_values_are_checked_against_the_definitions() {
    let f = crate::custom_field::read_input(
        json!({"key": "seats", "title": "Seats", "type": "integer"})
            .as_object()
            .unwrap(),
    )
    .unwrap();
    let seats =
        crate::custom_field::plan_create(crate::custom_field::Resource::User, &f, &[], 0).unwrap();
    let facts = Facts {
        user_fields: vec![seats].into(),
        ..Facts::default()
    };
    let bad = input(json!({"name": "N", "user_fields": {"seats": "many"}}));
    let Rejection::Invalid(v) = plan(&bad, ADMIN, &facts, 0).unwrap_err() else {
        panic!()
    };
    assert_eq!(
        v.details(),
        json!({"seats": [{"description": "Seats: is not a number", "error": "InvalidValue"}]})
    );
    let good = input(json!({"name": "N", "user_fields": {"seats": "4", "other": 1}}));
    let p = plan(&good, ADMIN, &facts, 0).unwrap();
    assert_eq!(Value::Object(p.user.user_fields), json!({"seats": 4}));
}

#[test]
fn same_body_twice_changes_nothing() {
    let ex = existing(1, Role::EndUser, "a@b.co");
    let i = input(json!({"email": "A@B.co", "name": "Old"}));
    let p = plan(
        &i,
        ADMIN,
        &Facts {
            existing: Some(ex),
            ..Facts::default()
        },
        300,
    )
    .unwrap();
    assert!(!p.changed);
    assert_eq!(p.user.updated_at, 100);
}

#[test]
fn agents_touch_end_users_only() {
    let create_agent = input(json!({"name": "N", "role": "agent"}));
    assert_eq!(
        plan(&create_agent, AGENT, &Facts::default(), 0),
        Err(Rejection::Forbidden)
    );
    let custom = input(json!({"name": "N", "custom_role_id": 3}));
    assert_eq!(
        plan(&custom, AGENT, &Facts::default(), 0),
        Err(Rejection::Forbidden)
    );
    let touch_admin = Facts {
        existing: Some(existing(1, Role::Admin, "a@b.co")),
        ..Facts::default()
    };
    assert_eq!(
        plan(&input(json!({"name": "x"})), AGENT, &touch_admin, 0),
        Err(Rejection::Forbidden)
    );
    let end_user = Facts {
        existing: Some(existing(1, Role::EndUser, "a@b.co")),
        ..Facts::default()
    };
    assert!(
        plan(
            &input(json!({"name": "x", "role": "end-user"})),
            AGENT,
            &end_user,
            0
        )
        .is_ok()
    );
}

#[test]
fn end_user_with_custom_role_becomes_agent() {
    let p = plan(
        &input(json!({"name": "N", "role": "end-user", "custom_role_id": "7"})),
        ADMIN,
        &Facts::default(),
        0,
    )
    .unwrap();
    assert_eq!(p.user.role, Role::Agent);
    assert_eq!(p.user.custom_role_id, Some(7));
    assert_eq!(p.user.ticket_restriction, None);
}

#[test]
fn organization_id_wins_over_name_and_unknown_id_is_invalid() {
    let i = input(json!({"name": "N", "organization_id": 5, "organization": {"name": "Acme"}}));
    let p = plan(
        &i,
        ADMIN,
        &Facts {
            organization_exists: Some(true),
            ..Facts::default()
        },
        0,
    )
    .unwrap();
    assert_eq!(p.user.organization_id, Some(5));
    assert_eq!(p.create_organization, None);
    let e = plan(
        &i,
        ADMIN,
        &Facts {
            organization_exists: Some(false),
            ..Facts::default()
        },
        0,
    )
    .unwrap_err();
    assert!(matches!(e, Rejection::Invalid(v) if v.fields[0].0 == "organization_id"));
    let by_name = input(json!({"name": "N", "organization": {"name": " Acme "}}));
    let p = plan(&by_name, ADMIN, &Facts::default(), 0).unwrap();
    assert_eq!(p.create_organization.as_deref(), Some("Acme"));
    let p = plan(
        &by_name,
        ADMIN,
        &Facts {
            organization_by_name: Some(9),
            ..Facts::default()
        },
        0,
    )
    .unwrap();
    assert_eq!(
        (p.user.organization_id, p.create_organization),
        (Some(9), None)
    );
}

fn email() -> impl Strategy<Value = String> {
    ("[a-cA-C]{1,2}", "[a-bA-B]{1,2}").prop_map(|(l, d)| format!("{l}@{d}.co"))
}

proptest! {
    /// Whatever mix of emails and identities a request carries, a plan never holds two
    /// identities with one normalised value, nor two primaries of one type, and
    /// `user.email` is the primary email when there is one.
    #[test]
    fn plans_keep_identities_unique(primary in proptest::option::of(email()), extra in proptest::collection::vec(email(), 0..6), has_existing in any::<bool>()) {
        let mut body = json!({"name": "N", "identities": extra.iter().map(|e| json!({"type": "email", "value": e})).collect::<Vec<_>>()});
        if let Some(p) = &primary { body["email"] = json!(p); }
        let i = input(body);
        let facts = Facts { existing: has_existing.then(|| existing(1, Role::EndUser, "a@a.co")), ..Facts::default() };
        let p = plan(&i, ADMIN, &facts, 0).unwrap();
        let mut seen = std::collections::HashSet::new();
        let existing_ids = facts.existing.as_ref().map(|(_, ids)| ids.clone()).unwrap_or_default();
        for id in existing_ids.iter().map(|i| normalize(&i.value)).chain(p.new_identities.iter().map(|n| normalize(&n.value))) {
            prop_assert!(seen.insert(id));
        }
        let primaries = existing_ids.iter().filter(|i| i.primary).count() + p.new_identities.iter().filter(|n| n.primary).count();
        prop_assert!(primaries <= 1);
        if !has_existing {
            let prim = p.new_identities.iter().find(|n| n.primary).map(|n| n.value.clone());
            prop_assert_eq!(p.user.email.clone(), prim);
        }
    }

    /// An agent's plan never yields a user that is not an end user.
    #[test]
    fn agents_never_escalate(role in proptest::option::of(prop_oneof![Just("end-user"), Just("agent"), Just("admin")]), custom in proptest::option::of(1i64..5)) {
        let mut body = json!({"name": "N"});
        if let Some(r) = role { body["role"] = json!(r); }
        if let Some(c) = custom { body["custom_role_id"] = json!(c); }
        if let Ok(p) = plan(&input(body), AGENT, &Facts::default(), 0) {
            prop_assert_eq!(p.user.role, Role::EndUser);
            prop_assert_eq!(p.user.custom_role_id, None);
        }
    }
}
