//! The admin pages (`/admin`) over HTTP, as a browser uses them: no page without a session,
//! sign-in through the API's credential check and failed-login throttle, CSRF on every form,
//! the API's role rules through the pages, escaping, sessions that end with the credential (on
//! every replica), the job event stream, the import and the settings.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_TOKEN, Auth, TestApp};
use crate::on_both_backends;

on_both_backends!(
    no_page_without_a_session,
    sign_in_rules,
    csrf_is_checked,
    output_is_escaped,
    agents_get_what_the_api_gives_them,
    sessions_end_with_the_credential,
    sign_out_reaches_every_replica,
    concurrent_edits_on_two_servers_keep_both,
    job_events_follow_a_job,
    import_through_the_page,
    tokens_and_settings_through_the_page,
    users_list_pages_and_filters,
);
on_both_backends!(config = throttled; failed_sign_ins_are_throttled);

fn throttled() -> deskd_server::Config {
    deskd_server::Config {
        rate_limits: true,
        auth_failure_limit: Some(3),
        account_rate_limit: None,
        profile_rate_limit: None,
        anonymous_rate_limit: None,
        incremental_rate_limit: None,
        ..deskd_server::Config::default()
    }
}

const AGENT_PASSWORD: &str = "agent password 12345";

/// A browser: its cookies, no redirects followed.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: StatusCode,
    location: String,
    set_cookie: Vec<String>,
    text: String,
}

impl Page {
    /// The first CSRF token on the page.
    fn csrf(&self) -> String {
        let at = self
            .text
            .find("name=\"_csrf\" value=\"")
            .expect("a form with a token");
        let rest = &self.text[at + "name=\"_csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    fn to_sign_in(&self) -> bool {
        self.status == StatusCode::SEE_OTHER && self.location.starts_with("/admin/login")
    }
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            base: app.url(""),
            cookies: Vec::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = if cookie.is_empty() {
            req
        } else {
            req.header("Cookie", cookie)
        };
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let set_cookie: Vec<String> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        for c in &set_cookie {
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !attrs.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        let text = resp.text().await.unwrap_or_default();
        Page {
            status,
            location,
            set_cookie,
            text,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    /// Signs in through the form; returns the answer to the form's POST.
    async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/admin/login").await;
        assert_eq!(form.status, StatusCode::OK);
        let nonce = form.csrf();
        self.post(
            "/admin/login",
            &[
                ("_csrf", &nonce),
                ("email", email),
                ("password", password),
                ("next", "/admin/users"),
            ],
        )
        .await
    }

    async fn signed_in(app: &TestApp, email: &str, password: &str) -> Browser {
        let mut b = Browser::new(app);
        let r = b.sign_in(email, password).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        assert_eq!(r.location, "/admin/users");
        b
    }

    /// The session's CSRF token, from any page.
    async fn token(&mut self) -> String {
        self.get("/admin/users").await.csrf()
    }
}

async fn agent(app: &TestApp, email: &str) -> i64 {
    let id = app.make_user("Agent Smith", email, "agent").await;
    set_password(app, id, AGENT_PASSWORD).await;
    id
}

async fn set_password(app: &TestApp, id: i64, password: &str) {
    let r = app
        .post(
            &format!("/api/v2/users/{id}/password"),
            json!({ "password": password }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
}

/// Defines a text user field: values of undefined fields are dropped, as Zendesk drops them.
async fn define_user_field(app: &TestApp, key: &str) {
    let r = app
        .post(
            "/api/v2/user_fields",
            json!({"user_field": {"type": "text", "key": key, "title": key}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn admin_id(app: &TestApp) -> i64 {
    app.get("/api/v2/users/me").await.body["user"]["id"]
        .as_i64()
        .unwrap()
}

async fn no_page_without_a_session(app: TestApp) {
    let admin = admin_id(&app).await;
    let mut b = Browser::new(&app);
    for path in [
        "/admin".to_owned(),
        "/admin/users".to_owned(),
        format!("/admin/users/{admin}"),
        "/admin/users/new".to_owned(),
        "/admin/organizations".to_owned(),
        "/admin/jobs".to_owned(),
        "/admin/jobs/V3-0/events".to_owned(),
        "/admin/import".to_owned(),
        "/admin/settings".to_owned(),
    ] {
        let r = b.get(&path).await;
        if path == "/admin" {
            // Only a redirect to the users' list, which itself needs a session.
            assert_eq!(r.location, "/admin/users");
            continue;
        }
        assert!(r.to_sign_in(), "{path}: {} {}", r.status, r.location);
        assert!(!r.text.contains("Admin"), "{path} showed something");
    }
    // Forms without a session change nothing.
    let before = app.count_users().await;
    let tokens = app.scalar("SELECT COUNT(*) FROM api_tokens").await;
    for (path, form) in [
        (
            "/admin/users/new".to_owned(),
            vec![("name", "Intruder"), ("email", "in@x.test")],
        ),
        (format!("/admin/users/{admin}/delete"), vec![]),
        (
            format!("/admin/users/{admin}/suspend"),
            vec![("suspended", "true")],
        ),
        (
            "/admin/settings/tokens".to_owned(),
            vec![("description", "x")],
        ),
    ] {
        let r = b.post(&path, &form).await;
        assert!(r.to_sign_in(), "{path}: {}", r.status);
    }
    assert_eq!(app.count_users().await, before);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM api_tokens").await, tokens);
    assert_eq!(
        app.get("/api/v2/users/me").await.body["user"]["suspended"],
        false
    );
    // A made-up session is no session, and its cookie is cleared.
    b.cookies
        .push(("deskd_session".into(), "made-up-secret".into()));
    let r = b.get("/admin/users").await;
    assert!(r.to_sign_in());
    assert!(
        r.set_cookie
            .iter()
            .any(|c| c.starts_with("deskd_session=;") && c.contains("Max-Age=0"))
    );
    // The import takes no upload without a session either.
    let r = b
        .send(
            b.http
                .post(format!("{}/admin/import", b.base))
                .body("name,email\nA,a@x.test\n"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(app.count_users().await, before);
}

async fn sign_in_rules(app: TestApp) {
    let mut b = Browser::new(&app);
    let r = b.sign_in(ADMIN_EMAIL, "wrong password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text.contains("Invalid email or password"));
    assert!(!b.cookies.iter().any(|(k, _)| k == "deskd_session"));
    let r = b.sign_in("nobody@x.test", "whatever").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // `EMAIL/token` would be an API token login to the API: the pages take passwords only.
    let r = b
        .sign_in(&format!("{ADMIN_EMAIL}/token"), ADMIN_TOKEN)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!b.cookies.iter().any(|(k, _)| k == "deskd_session"));
    // End users have a password but no admin pages.
    let end = app.make_user("End User", "end@x.test", "end-user").await;
    set_password(&app, end, "end user password 1").await;
    let r = b.sign_in("end@x.test", "end user password 1").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!b.cookies.iter().any(|(k, _)| k == "deskd_session"));
    // The real thing: a session cookie the page's scripts cannot read, sent to these pages only.
    let r = b.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let cookie = r
        .set_cookie
        .iter()
        .find(|c| c.starts_with("deskd_session="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let secret = b
        .cookies
        .iter()
        .find(|(k, _)| k == "deskd_session")
        .unwrap()
        .1
        .clone();
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM web_sessions WHERE digest = '{secret}'"
        ))
        .await,
        0,
        "the secret itself is not stored"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM web_sessions").await, 1);
    assert_eq!(b.get("/admin/users").await.status, StatusCode::OK);
    // Behind TLS the cookie is Secure too; `next` never leaves the admin pages.
    let mut c = Browser::new(&app);
    let nonce = c.get("/admin/login").await.csrf();
    let req = c
        .http
        .post(format!("{}/admin/login", c.base))
        .header("X-Forwarded-Proto", "https")
        .form(&[
            ("_csrf", nonce.as_str()),
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("next", "//evil.example/x"),
        ]);
    let r = c.send(req).await;
    assert_eq!(r.location, "/admin/users");
    assert!(
        r.set_cookie
            .iter()
            .any(|c| c.starts_with("deskd_session=") && c.contains("; Secure"))
    );
}

async fn failed_sign_ins_are_throttled(app: TestApp) {
    let mut b = Browser::new(&app);
    for _ in 0..3 {
        assert_eq!(
            b.sign_in(ADMIN_EMAIL, "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = b.sign_in(ADMIN_EMAIL, "guess").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text.contains("Too many failed sign-ins"));
    // The API's rule: past the limit, the right password waits too; tokens still work.
    let r = b.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!b.cookies.iter().any(|(k, _)| k == "deskd_session"));
    let api = app
        .get_as(
            &Auth::Password(ADMIN_EMAIL.into(), ADMIN_PASSWORD.into()),
            "/api/v2/users/me",
        )
        .await;
    assert_eq!(
        api.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the pages and the API share the budget"
    );
    assert_eq!(app.get("/api/v2/users/me").await.status, StatusCode::OK);
}

async fn csrf_is_checked(app: TestApp) {
    let id = app.make_user("Target", "target@x.test", "end-user").await;
    let mut b = Browser::signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mut other = Browser::signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let theirs = other.token().await;
    let mine = b.token().await;
    assert_ne!(mine, theirs);
    let path = format!("/admin/users/{id}");
    for bad in [
        None,
        Some(""),
        Some("0123456789abcdef0123456789abcdef"),
        Some(theirs.as_str()),
    ] {
        let mut form = vec![("name", "Changed")];
        if let Some(t) = bad {
            form.push(("_csrf", t));
        }
        let r = b.post(&path, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{bad:?}");
        for (p, f) in [
            (format!("{path}/suspend"), vec![("suspended", "true")]),
            (format!("{path}/delete"), vec![]),
            (
                "/admin/settings/tokens".to_owned(),
                vec![("description", "csrf")],
            ),
            (
                "/admin/settings/bulk_import".to_owned(),
                vec![("on", "false")],
            ),
            (
                "/admin/users/new".to_owned(),
                vec![("name", "Forged"), ("email", "forged@x.test")],
            ),
        ] {
            let mut f = f;
            if let Some(t) = bad {
                f.push(("_csrf", t));
            }
            assert_eq!(
                b.post(&p, &f).await.status,
                StatusCode::FORBIDDEN,
                "{p} {bad:?}"
            );
        }
    }
    let user = app.get(&format!("/api/v2/users/{id}")).await.body["user"].clone();
    assert_eq!(user["name"], "Target");
    assert_eq!(user["suspended"], false);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM api_tokens").await, 1);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM users WHERE name = 'Forged'")
            .await,
        0
    );
    // An import upload carries the token in a header.
    let req = b
        .http
        .post(format!("{}/admin/import?name=a.csv", b.base))
        .header("X-CSRF-Token", theirs.as_str())
        .body("name,email\nA,csrf-import@x.test\n");
    assert_eq!(b.send(req).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM identities WHERE value = 'csrf-import@x.test'")
            .await,
        0
    );
    // Signing out takes the token too.
    assert_eq!(
        b.post("/admin/logout", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(b.get("/admin/users").await.status, StatusCode::OK);
    // The sign-in form's own token: a POST without the form's cookie is refused.
    let mut c = Browser::new(&app);
    let r = c
        .post(
            "/admin/login",
            &[
                ("_csrf", "x"),
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!c.cookies.iter().any(|(k, _)| k == "deskd_session"));
    // With the right token the same edit goes through.
    let r = b
        .post(&path, &[("_csrf", mine.as_str()), ("name", "Changed")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(
        app.get(&format!("/api/v2/users/{id}")).await.body["user"]["name"],
        "Changed"
    );
}

async fn output_is_escaped(app: TestApp) {
    define_user_field(&app, "k").await;
    let name = "<script>alert(1)</script>";
    let r = app
        .upsert(json!({"name": name, "email": "xss@x.test", "tags": ["<b>t</b>"], "notes": "\"><img src=x onerror=alert(2)>", "user_fields": {"k": "</textarea><script>3</script>"}}))
        .await;
    let id = r.body["user"]["id"].as_i64().unwrap();
    let org = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "<i>Org</i>"}}),
        )
        .await;
    let org_id = org.body["organization"]["id"].as_i64().unwrap();
    let mut b = Browser::signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for path in [
        "/admin/users".to_owned(),
        format!("/admin/users/{id}"),
        "/admin/users?q=%3Cscript%3E".to_owned(),
        "/admin/users?q=bogus:%3Cb%3E".to_owned(),
        "/admin/organizations".to_owned(),
        format!("/admin/organizations/{org_id}"),
    ] {
        let page = b.get(&path).await;
        assert!(
            page.status.is_success() || page.status == StatusCode::BAD_REQUEST,
            "{path}: {}",
            page.status
        );
        for raw in ["<script>alert", "<script>3", "<img src=x", "<b>", "<i>Org"] {
            assert!(!page.text.contains(raw), "{path} has {raw} unescaped");
        }
    }
    let page = b.get(&format!("/admin/users/{id}")).await;
    assert!(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.text.contains("&lt;/textarea&gt;"));
    // Only deskd's own script is loaded, and the CSP says so.
    let r = app
        .client
        .get(app.url("/admin/login"))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-frame-options"], "DENY");
}

async fn agents_get_what_the_api_gives_them(app: TestApp) {
    agent(&app, "agent@x.test").await;
    let end = app.make_user("End", "end2@x.test", "end-user").await;
    let mut b = Browser::signed_in(&app, "agent@x.test", AGENT_PASSWORD).await;
    let users = b.get("/admin/users").await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(
        !users.text.contains("href=\"/admin/settings\""),
        "no settings link for agents"
    );
    let token = users.csrf();
    let r = b.get("/admin/settings").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.text.contains("API tokens"));
    let tokens = app.scalar("SELECT COUNT(*) FROM api_tokens").await;
    let r = b
        .post(
            "/admin/settings/tokens",
            &[("_csrf", &token), ("description", "agent's")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b
        .post(
            "/admin/settings/bulk_import",
            &[("_csrf", &token), ("on", "false")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM api_tokens").await, tokens);
    let admin = admin_id(&app).await;
    let r = b
        .post(
            &format!("/admin/settings/tokens/{admin}/revoke"),
            &[("_csrf", &token)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The API's rule: no agent raises anyone to admin. The page answers what the API did.
    let r = b
        .post(
            &format!("/admin/users/{end}"),
            &[("_csrf", &token), ("role", "admin")],
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert_eq!(
        app.get(&format!("/api/v2/users/{end}")).await.body["user"]["role"],
        "end-user"
    );
    // What an agent may do, the page does.
    let r = b
        .post(
            &format!("/admin/users/{end}"),
            &[("_csrf", &token), ("notes", "called")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(
        app.get(&format!("/api/v2/users/{end}")).await.body["user"]["notes"],
        "called"
    );
    let api_answer = app
        .send(
            Method::DELETE,
            &format!("/api/v2/users/{admin}"),
            &Auth::as_user("agent@x.test"),
            None,
        )
        .await
        .status;
    let r = b
        .post(
            &format!("/admin/users/{admin}/delete"),
            &[("_csrf", &token)],
        )
        .await;
    assert_eq!(
        r.status, api_answer,
        "deleting the admin: the page answers as the API"
    );
    assert_eq!(app.get("/api/v2/users/me").await.status, StatusCode::OK);
}

async fn sessions_end_with_the_credential(app: TestApp) {
    let id = agent(&app, "agent@x.test").await;
    let mut b = Browser::signed_in(&app, "agent@x.test", AGENT_PASSWORD).await;
    assert_eq!(b.get("/admin/users").await.status, StatusCode::OK);
    // A new password ends the session (the old one was what it stood for).
    set_password(&app, id, "a new agent password 1").await;
    assert!(b.get("/admin/users").await.to_sign_in());
    assert_eq!(app.scalar("SELECT COUNT(*) FROM web_sessions").await, 0);
    // A role change ends it, even a promotion.
    let mut b = Browser::signed_in(&app, "agent@x.test", "a new agent password 1").await;
    assert_eq!(
        app.put(
            &format!("/api/v2/users/{id}"),
            json!({"user": {"role": "admin"}})
        )
        .await
        .status,
        StatusCode::OK
    );
    assert!(b.get("/admin/users").await.to_sign_in());
    // Suspension ends it.
    let mut b = Browser::signed_in(&app, "agent@x.test", "a new agent password 1").await;
    assert_eq!(
        app.put(
            &format!("/api/v2/users/{id}"),
            json!({"user": {"suspended": true}})
        )
        .await
        .status,
        StatusCode::OK
    );
    assert!(b.get("/admin/users").await.to_sign_in());
    // Signing out ends it for good: the same cookie no longer opens a page.
    let mut b = Browser::signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let saved = b.cookies.clone();
    let token = b.token().await;
    let r = b.post("/admin/logout", &[("_csrf", &token)]).await;
    assert_eq!(r.location, "/admin/login?done=signed_out");
    assert!(!b.cookies.iter().any(|(k, _)| k == "deskd_session"));
    b.cookies = saved;
    assert!(b.get("/admin/users").await.to_sign_in());
    // An admin's pages change the agent's role: the agent's session ends too.
    let other = agent(&app, "agent2@x.test").await;
    let mut a = Browser::signed_in(&app, "agent2@x.test", AGENT_PASSWORD).await;
    let mut admin = Browser::signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let t = admin.token().await;
    let r = admin
        .post(
            &format!("/admin/users/{other}"),
            &[("_csrf", &t), ("role", "end-user")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(a.get("/admin/users").await.to_sign_in());
}

async fn sign_out_reaches_every_replica(app: TestApp) {
    let b_server = TestApp::replica_of(
        &app,
        deskd_server::Config {
            rate_limits: false,
            ..deskd_server::Config::default()
        },
    )
    .await;
    let mut on_a = Browser::signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mut on_b = Browser::new(&b_server);
    on_b.cookies = on_a.cookies.clone();
    // The other server knows the session (and caches it).
    assert_eq!(on_b.get("/admin/users").await.status, StatusCode::OK);
    let token = on_a.token().await;
    assert_eq!(
        on_a.post("/admin/logout", &[("_csrf", &token)])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let start = Instant::now();
    while !on_b.get("/admin/users").await.to_sign_in() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the other server still accepts the session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads an event stream to its end: (event name, data) pairs.
async fn events(app: &TestApp, auth: &Auth, id: &str) -> (StatusCode, Vec<(String, Value)>) {
    let mut req = app
        .client
        .get(app.url(&format!("/api/v2/job_statuses/{id}/events")));
    if let Auth::Token(e, t) = auth {
        req = req.basic_auth(format!("{e}/token"), Some(t));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    if status != StatusCode::OK {
        return (status, Vec::new());
    }
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut name = String::new();
        let mut data = String::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        if !name.is_empty() {
            out.push((name, serde_json::from_str(&data).unwrap_or(Value::Null)));
        }
    }
    (status, out)
}

async fn job_events_follow_a_job(app: TestApp) {
    let users: Vec<Value> = (0..100)
        .map(|i| json!({"name": format!("E{i}"), "email": format!("e{i}@events.test")}))
        .collect();
    let r = app
        .post(
            "/api/v2/users/create_or_update_many",
            json!({ "users": users }),
        )
        .await;
    let id = r.body["job_status"]["id"].as_str().unwrap().to_owned();
    let (status, evs) = events(&app, &Auth::admin(), &id).await;
    assert_eq!(status, StatusCode::OK);
    let (last, body) = evs.last().unwrap();
    assert_eq!(last, "completed");
    assert_eq!(body["job_status"]["status"], "completed");
    assert_eq!(body["job_status"]["results"].as_array().unwrap().len(), 100);
    // Every event before the last is a progress event, each one a change, never going back.
    let mut seen = Vec::new();
    for (name, b) in &evs[..evs.len() - 1] {
        assert_eq!(name, "progress");
        assert!(b["job_status"]["results"].is_null());
        seen.push((
            b["job_status"]["status"].as_str().unwrap().to_owned(),
            b["job_status"]["progress"].as_i64().unwrap_or(0),
        ));
    }
    assert!(
        seen.windows(2).all(|w| w[0] != w[1] && w[0].1 <= w[1].1),
        "{seen:?}"
    );
    // A finished job: one event, at once.
    let (_, again) = events(&app, &Auth::admin(), &id).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].0, "completed");
    // The API's rules: 404 for no such job, 401 anonymous, 403 end users.
    assert_eq!(
        events(&app, &Auth::admin(), "V3-nosuchjob").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        events(&app, &Auth::None, &id).await.0,
        StatusCode::UNAUTHORIZED
    );
    app.make_user("End", "end@events.test", "end-user").await;
    assert_eq!(
        events(&app, &Auth::as_user("end@events.test"), &id).await.0,
        StatusCode::FORBIDDEN
    );
    // The job's page follows the same stream through the session.
    let mut b = Browser::signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = b.get(&format!("/admin/jobs/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("value=\"100\""));
    let stream = b.get(&format!("/admin/jobs/{id}/events")).await;
    assert!(
        stream.text.starts_with("event: completed"),
        "{}",
        &stream.text[..stream.text.len().min(80)]
    );
    assert_eq!(b.get("/admin/jobs").await.status, StatusCode::OK);
}

/// Reads an import answer's JSON lines.
fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn import_through_the_page(app: TestApp) {
    define_user_field(&app, "plan").await;
    let mut b = Browser::signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token = b.token().await;
    assert_eq!(b.get("/admin/import").await.status, StatusCode::OK);
    // Invalid rows: each named by its line, and nothing is sent.
    let before = app.count_users().await;
    let bad = "name,email\nGood,good@imp.test\nNo Email,\n,noname@imp.test\nDup,good@imp.test\n";
    let req = b
        .http
        .post(format!("{}/admin/import?name=bad.csv", b.base))
        .header("X-CSRF-Token", token.as_str())
        .body(bad);
    let r = b.send(req).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = serde_json::from_str(&r.text).unwrap();
    let problems: Vec<&str> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        problems.iter().any(|p| p.starts_with("line 3:")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("line 4:")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("line 5:") && p.contains("line 2")),
        "{problems:?}"
    );
    assert_eq!(app.count_users().await, before);
    // 251 users in CSV: three batches, each followed to its end.
    let mut csv = String::from("name,email,tags,user_fields.plan\n");
    for i in 0..250 {
        csv.push_str(&format!("User {i},u{i}@imp.test,a b,gold\n"));
    }
    csv.push_str("Odd One,odd@imp.test,,\n");
    let req = b
        .http
        .post(format!("{}/admin/import?name=users.csv", b.base))
        .header("X-CSRF-Token", token.as_str())
        .body(csv.clone());
    let r = b.send(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let msgs = lines(&r.text);
    let submitted = msgs.iter().filter(|m| m.get("submitted").is_some()).count();
    assert_eq!(submitted, 3, "251 rows in batches of 100");
    let done = &msgs.last().unwrap()["done"];
    assert_eq!(done["total"], 251, "{msgs:?}");
    assert_eq!(done["created"], 251);
    assert_eq!(done["failed"], 0);
    let progress: Vec<i64> = msgs
        .iter()
        .filter_map(|m| m["progress"]["done"].as_i64())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    assert_eq!(progress.last().copied(), Some(251));
    assert_eq!(app.count_users().await, before + 251);
    let u = app
        .get("/api/v2/users/search?query=email:u7@imp.test")
        .await;
    assert_eq!(u.body["users"][0]["user_fields"]["plan"], "gold");
    // JSON Lines, with a row the API refuses: the failures file has it, with its error.
    let jsonl = "{\"name\": \"J1\", \"email\": \"j1@imp.test\"}\n{\"name\": \"J2\", \"email\": \"j2@imp.test\", \"role\": \"boss\"}\n";
    let req = b
        .http
        .post(format!("{}/admin/import?name=u.jsonl", b.base))
        .header("X-CSRF-Token", token.as_str())
        .body(jsonl);
    let r = b.send(req).await;
    let msgs = lines(&r.text);
    let done = &msgs.last().unwrap()["done"];
    assert_eq!(done["total"], 2, "{msgs:?}");
    assert_eq!(
        (done["created"].as_u64(), done["failed"].as_u64()),
        (Some(1), Some(1)),
        "{done}"
    );
    assert_eq!(done["failures"][0]["line"], 2);
    assert!(
        done["failures"][0]["error"]
            .as_str()
            .unwrap()
            .contains("Role"),
        "{done}"
    );
    // The failures file: the row as given, with its error, ready to fix and import again.
    let file = done["failures_file"].as_str().unwrap();
    let row: Value = serde_json::from_str(file.lines().next().unwrap()).unwrap();
    assert_eq!(
        (row["name"].as_str(), row["role"].as_str()),
        (Some("J2"), Some("boss"))
    );
    assert!(
        row["error"].as_str().unwrap().starts_with("InvalidValue"),
        "{row}"
    );
    // The same file again: every row updated or unchanged, none created.
    let req = b
        .http
        .post(format!("{}/admin/import?name=users.csv", b.base))
        .header("X-CSRF-Token", token.as_str())
        .body(csv);
    let msgs = lines(&b.send(req).await.text);
    assert_eq!(msgs.last().unwrap()["done"]["created"], 0);
    // Bulk imports off: the API refuses, and the page says why.
    assert!(
        app.put(
            "/api/v2/account/settings",
            json!({"settings": {"deskd": {"bulk_user_import": false}}})
        )
        .await
        .status
        .is_success()
    );
    let req = b
        .http
        .post(format!("{}/admin/import?name=x.csv", b.base))
        .header("X-CSRF-Token", token.as_str())
        .body("name,email\nOff,off@imp.test\n");
    let msgs = lines(&b.send(req).await.text);
    assert!(msgs.last().unwrap()["error"].as_str().is_some(), "{msgs:?}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM identities WHERE value = 'off@imp.test'")
            .await,
        0
    );
}

async fn tokens_and_settings_through_the_page(app: TestApp) {
    let mut b = Browser::signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = b.get("/admin/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    let token = page.csrf();
    let r = b
        .post(
            "/admin/settings/tokens",
            &[("_csrf", &token), ("description", "from the page")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let at = r.text.find("data-field=\"new-token\">").unwrap() + "data-field=\"new-token\">".len();
    let secret = r.text[at..at + r.text[at..].find('<').unwrap()].to_owned();
    assert_eq!(secret.len(), 40);
    let auth = Auth::Token(ADMIN_EMAIL.into(), secret.clone());
    assert_eq!(
        app.get_as(&auth, "/api/v2/users/me").await.status,
        StatusCode::OK
    );
    // Listed, never shown again.
    let listed = b.get("/admin/settings").await;
    assert!(listed.text.contains("from the page"));
    assert!(!listed.text.contains(&secret));
    let id = app
        .scalar("SELECT id FROM api_tokens WHERE description = 'from the page'")
        .await;
    let r = b
        .post(
            &format!("/admin/settings/tokens/{id}/revoke"),
            &[("_csrf", &token)],
        )
        .await;
    assert_eq!(r.location, "/admin/settings?done=revoked");
    assert_eq!(
        app.get_as(&auth, "/api/v2/users/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    // The bulk-import switch is the account setting.
    let r = b
        .post(
            "/admin/settings/bulk_import",
            &[("_csrf", &token), ("on", "false")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/api/v2/account/settings").await.body["settings"]["deskd"]["bulk_user_import"],
        false
    );
    assert!(
        b.get("/admin/settings")
            .await
            .text
            .contains("data-field=\"bulk\">off")
    );
}

async fn users_list_pages_and_filters(app: TestApp) {
    define_user_field(&app, "plan").await;
    let org = app
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "Acme"}}),
        )
        .await;
    let org_id = org.body["organization"]["id"].as_i64().unwrap();
    for i in 0..60 {
        let mut u = json!({"name": format!("Pat {i:02}"), "email": format!("pat{i}@list.test")});
        if i % 3 == 0 {
            u["organization_id"] = json!(org_id);
            u["role"] = json!("agent");
        }
        app.upsert(u).await;
    }
    let mut b = Browser::signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // The API's search syntax, then the next page by cursor.
    let first = b.get("/admin/users?q=email:*@list.test").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.text.matches("@list.test</td>").count(), 50);
    let at = first.text.find("rel=\"next\" href=\"").unwrap() + "rel=\"next\" href=\"".len();
    let next = first.text[at..at + first.text[at..].find('"').unwrap()].replace("&amp;", "&");
    let second = b.get(&next).await;
    assert_eq!(second.text.matches("@list.test</td>").count(), 10);
    assert!(!second.text.contains("rel=\"next\""));
    assert!(second.text.contains("rel=\"prev\""));
    // Role and organization filters.
    let agents = b.get("/admin/users?q=email:*@list.test&role=agent").await;
    assert_eq!(agents.text.matches("@list.test</td>").count(), 20);
    let in_org = b
        .get(&format!("/admin/users?organization_id={org_id}"))
        .await;
    assert_eq!(in_org.text.matches("@list.test</td>").count(), 20);
    // Bad input is a clear 400, not an error page.
    for bad in [
        "/admin/users?role=boss",
        "/admin/users?organization_id=x",
        "/admin/users?after=nonsense",
        "/admin/users?q=color:red",
    ] {
        let r = b.get(bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.text.contains("class=\"error\""), "{bad}");
    }
    // A user's page shows identities and memberships; an unknown one is a 404 page.
    let id = app
        .get("/api/v2/users/search?query=email:pat0@list.test")
        .await
        .body["users"][0]["id"]
        .as_i64()
        .unwrap();
    let page = b.get(&format!("/admin/users/{id}")).await;
    assert!(page.text.contains("pat0@list.test") && page.text.contains("Acme"));
    assert_eq!(
        b.get("/admin/users/999999999999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.get("/admin/users/abc").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.get(&format!("/admin/organizations/{org_id}"))
            .await
            .status,
        StatusCode::OK
    );
    // Create, suspend, delete through the forms.
    let token = page.csrf();
    let r = b
        .post(
            "/admin/users/new",
            &[
                ("_csrf", &token),
                ("name", "Made Here"),
                ("email", "made@list.test"),
                ("role", "end-user"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let made: i64 = r
        .location
        .trim_start_matches("/admin/users/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let dup = b
        .post(
            "/admin/users/new",
            &[
                ("_csrf", &token),
                ("name", "Again"),
                ("email", "made@list.test"),
            ],
        )
        .await;
    assert_eq!(
        dup.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the API's 422, on the form"
    );
    assert!(dup.text.contains("class=\"error\""));
    assert_eq!(
        b.post(
            &format!("/admin/users/{made}/suspend"),
            &[("_csrf", &token), ("suspended", "true")]
        )
        .await
        .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.get(&format!("/api/v2/users/{made}")).await.body["user"]["suspended"],
        true
    );
    assert_eq!(
        b.post(&format!("/admin/users/{made}/delete"), &[("_csrf", &token)])
            .await
            .location,
        "/admin/users?done=deleted"
    );
    assert_eq!(
        app.get(&format!("/api/v2/users/{made}")).await.body["user"]["active"],
        false
    );
    // A user field edited as JSON; a bad one is refused and changes nothing.
    let r = b
        .post(
            &format!("/admin/users/{id}"),
            &[("_csrf", &token), ("user_fields", "{\"plan\": \"gold\"}")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = b
        .post(
            &format!("/admin/users/{id}"),
            &[
                ("_csrf", &token),
                ("user_fields", "[1,2]"),
                ("name", "Not Saved"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let u = app.get(&format!("/api/v2/users/{id}")).await.body["user"].clone();
    assert_eq!(u["user_fields"]["plan"], "gold");
    assert_eq!(u["name"], "Pat 00");
    // NUL bytes and odd Unicode in a form: the API's answer, no 500.
    let r = b
        .post(
            &format!("/admin/users/{id}"),
            &[("_csrf", &token), ("name", "a\u{0}b")],
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    let r = b
        .post(
            &format!("/admin/users/{id}"),
            &[("_csrf", &token), ("name", "Zoë 🦀 \u{202e}x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

/// Two admins on two servers edit different fields of one user at once, again and again: each
/// page sends only what its form changed, and the API's write path serializes the two, so
/// neither edit is lost.
async fn concurrent_edits_on_two_servers_keep_both(app: TestApp) {
    let other = TestApp::replica_of(
        &app,
        deskd_server::Config {
            rate_limits: false,
            ..deskd_server::Config::default()
        },
    )
    .await;
    let id = app.make_user("Shared", "shared@x.test", "end-user").await;
    let mut a = Browser::signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mut b = Browser::signed_in(&other, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (ta, tb) = (a.token().await, b.token().await);
    let path = format!("/admin/users/{id}");
    for round in 0..8 {
        let (na, nb) = (format!("notes {round}"), format!("details {round}"));
        let (fa, fb) = (
            [("_csrf", ta.as_str()), ("notes", na.as_str())],
            [("_csrf", tb.as_str()), ("details", nb.as_str())],
        );
        let (ra, rb) = tokio::join!(a.post(&path, &fa), b.post(&path, &fb));
        assert_eq!(
            (ra.status, rb.status),
            (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER),
            "{} {}",
            ra.text,
            rb.text
        );
        let u = app.get(&format!("/api/v2/users/{id}")).await.body["user"].clone();
        assert_eq!(
            (u["notes"].as_str(), u["details"].as_str()),
            (Some(na.as_str()), Some(nb.as_str())),
            "round {round}"
        );
    }
}
