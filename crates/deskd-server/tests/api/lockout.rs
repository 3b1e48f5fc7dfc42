//! A stranger guessing passwords slows down himself, not the owner: password failures are
//! counted per email and client address, tokens are never throttled by them, and a failed login
//! takes as long whether or not the email exists or has a password.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use deskd_server::Config;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Auth, TestApp};
use crate::on_both_backends;

on_both_backends!(config = failure_limit_10; wrong_passwords_do_not_lock_out_the_owner);
on_both_backends!(config = no_failure_limit; failed_logins_take_as_long_for_everyone);

fn failure_limit_10() -> Config {
    Config {
        rate_limits: true,
        account_rate_limit: None,
        profile_rate_limit: None,
        auth_failure_limit: Some(10),
        job_lease: Duration::from_secs(2),
        ..Config::default()
    }
}

fn no_failure_limit() -> Config {
    Config {
        auth_failure_limit: None,
        anonymous_rate_limit: None,
        ..failure_limit_10()
    }
}

async fn wrong_passwords_do_not_lock_out_the_owner(app: TestApp) {
    for i in 0..12 {
        let r = app
            .get_as(
                &Auth::Password(ADMIN_EMAIL.into(), format!("guess {i}")),
                "/api/v2/users/me",
            )
            .await;
        let expected = if i < 10 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(r.status, expected, "guess {i}: {}", r.text);
    }
    // The owner's API token works, first time and every time.
    for _ in 0..3 {
        let r = app.get_as(&Auth::admin(), "/api/v2/users/me").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    // So does a bearer token of that user.
    let t = app
        .post(
            "/api/v2/oauth/tokens",
            json!({"token": {"scopes": ["read"]}}),
        )
        .await;
    let bearer = Auth::Bearer(t.body["token"]["full_token"].as_str().unwrap().to_owned());
    assert_eq!(
        app.get_as(&bearer, "/api/v2/users/me").await.status,
        StatusCode::OK
    );
    // The guesser's address waits, even with the right password...
    let right = Auth::Password(ADMIN_EMAIL.into(), ADMIN_PASSWORD.into());
    assert_eq!(
        app.get_as(&right, "/api/v2/users/me").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...but the owner, from another address, logs in with it.
    let elsewhere = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let r = elsewhere
        .get(app.url("/api/v2/users/me"))
        .basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("from 127.0.0.2");
    assert_eq!(r.status(), StatusCode::OK);
}

async fn failed_logins_take_as_long_for_everyone(app: TestApp) {
    app.make_user("No password", "nopass@example.org", "agent")
        .await;
    let cases = [
        Auth::Password(ADMIN_EMAIL.into(), "wrong".into()),
        Auth::Password("nobody@example.org".into(), "wrong".into()),
        Auth::Password("nopass@example.org".into(), "wrong".into()),
    ];
    // Interleaved, so that whatever else the machine does weighs on each alike; medians of 7.
    let mut times: [Vec<Duration>; 3] = Default::default();
    for _ in 0..7 {
        for (auth, t) in cases.iter().zip(times.iter_mut()) {
            let start = Instant::now();
            let r = app.get_as(auth, "/api/v2/users/me").await;
            t.push(start.elapsed());
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth:?}: {}", r.text);
        }
    }
    let [with_password, unknown, without_password] = times.map(|mut t| {
        t.sort();
        t[3]
    });
    // Each runs one argon2 verification; without that the last two take a fiftieth of the first.
    for (what, t) in [
        ("unknown email", unknown),
        ("no password", without_password),
    ] {
        assert!(
            t * 3 >= with_password,
            "{what}: {t:?}, a user with a password: {with_password:?}"
        );
    }
}
