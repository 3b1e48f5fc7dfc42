//! The README's Rust example: a test suite for code that uses deskd-client, run against
//! `deskd serve --test-mode` instead of a Zendesk sandbox — one server, a reset per test, a
//! fixture, a fault to prove the retry, job steps to see every state. `cargo test --workspace`
//! runs it, so the example stays true.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use deskd_client::{Auth, Client};
use serde_json::json;

/// A throwaway deskd: in memory, test mode, the credentials on its `--print-env` line.
struct Deskd(Child, Client);

impl Drop for Deskd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_deskd() -> Deskd {
    let mut child = Command::new(env!("CARGO_BIN_EXE_deskd"))
        .args([
            "serve",
            "--test-mode",
            "--database",
            "memory",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--print-env", "--rate-limits", "off"])
        .env_remove("DESKD_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("deskd");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    for line in out.lines() {
        let line = line.expect("stdout");
        if line.starts_with("ZENDESK_URL=") {
            let var = |k: &str| {
                line.split(' ')
                    .find_map(|w| w.strip_prefix(k))
                    .expect(k)
                    .to_owned()
            };
            let auth = Auth::Token {
                email: var("ZENDESK_EMAIL="),
                token: var("ZENDESK_TOKEN="),
            };
            let client = Client::new(&var("ZENDESK_URL="), auth).expect("client");
            return Deskd(child, client);
        }
    }
    panic!("deskd exited before it was ready");
}

#[tokio::test]
async fn a_suite_against_deskd_in_test_mode() {
    let deskd = start_deskd();
    let (zendesk, controls) = (&deskd.1, deskd.1.test_mode());

    // Each test starts from a reset, then loads its fixture.
    controls.reset().await.unwrap();
    controls
        .import(&json!({
            "users": [{"id": 1001, "name": "Ann", "email": "ann@acme.test", "role": "agent"}],
        }))
        .await
        .unwrap();
    assert_eq!(zendesk.user(1001).await.unwrap().name, "Ann");

    // A 429 with Retry-After: the client waits and retries, once.
    controls
        .add_fault(
            &json!({"method": "GET", "path": "/api/v2/users/1001*", "times": 1,
                           "response": {"status": 429, "retry_after": 1}}),
        )
        .await
        .unwrap();
    assert_eq!(zendesk.user(1001).await.unwrap().name, "Ann");
    let seen: Vec<_> = controls
        .requests("path=/api/v2/users/1001*")
        .await
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, [200, 429, 200]);

    // A bulk job, one item at a time: every state a poller can see.
    controls.reset().await.unwrap();
    controls.hold_jobs().await.unwrap();
    let users = [
        json!({"name": "B", "email": "b@acme.test"}),
        json!({"name": "C"}),
    ];
    let job = zendesk.create_many(&users, None).await.unwrap();
    assert_eq!(zendesk.job_status(&job.id).await.unwrap().status, "queued");
    controls.step_jobs(1).await.unwrap();
    let working = zendesk.job_status(&job.id).await.unwrap();
    assert_eq!(
        (working.status.as_str(), working.progress),
        ("working", Some(1))
    );
    controls.step_jobs(1).await.unwrap();
    assert_eq!(
        zendesk.job_status(&job.id).await.unwrap().status,
        "completed"
    );
    controls.release_jobs().await.unwrap();
}
