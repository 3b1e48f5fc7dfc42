//! deskd's test-mode controls (`deskd serve --test-mode`), for a Rust test suite that runs its
//! Zendesk integration against deskd: reset, fixtures, snapshots, faults, the request journal,
//! the clock and job pacing. Not Zendesk's: against Zendesk every call here is a 404.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{Client, Error};

/// The controls of the deskd a [`Client`] talks to (see [`Client::test_mode`]).
pub struct TestMode<'a> {
    client: &'a Client,
    root: String,
}

impl Client {
    /// The `/__deskd/` controls of this client's server.
    pub fn test_mode(&self) -> TestMode<'_> {
        let root = self
            .base()
            .strip_suffix("/api/v2")
            .unwrap_or(self.base())
            .to_owned()
            + "/__deskd";
        TestMode { client: self, root }
    }
}

impl TestMode<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, Error> {
        let url = format!("{}{path}", self.root);
        let (_, v) = self.client.send(method, &url, body, &[], false).await?;
        Ok(v)
    }

    /// `POST /__deskd/reset`: an empty account but for the admin.
    pub async fn reset(&self) -> Result<Value, Error> {
        self.call(Method::POST, "/reset", None).await
    }

    /// `GET /__deskd/export`: the account as a fixture document.
    pub async fn export(&self) -> Result<Value, Error> {
        self.call(Method::GET, "/export", None).await
    }

    /// `POST /__deskd/import`: the account replaced by a fixture document.
    pub async fn import(&self, fixture: &Value) -> Result<Value, Error> {
        self.call(Method::POST, "/import", Some(fixture)).await
    }

    /// `POST /__deskd/snapshots/{name}`.
    pub async fn save_snapshot(&self, name: &str) -> Result<Value, Error> {
        self.call(Method::POST, &format!("/snapshots/{name}"), None)
            .await
    }

    /// `POST /__deskd/snapshots/{name}/restore`.
    pub async fn restore_snapshot(&self, name: &str) -> Result<Value, Error> {
        self.call(Method::POST, &format!("/snapshots/{name}/restore"), None)
            .await
    }

    /// `POST /__deskd/faults`: a rule such as `{"method": "GET", "path": "/api/v2/users/*",
    /// "times": 1, "response": {"status": 429, "retry_after": 1}}`.
    pub async fn add_fault(&self, rule: &Value) -> Result<Value, Error> {
        self.call(Method::POST, "/faults", Some(rule)).await
    }

    /// `DELETE /__deskd/faults`.
    pub async fn clear_faults(&self) -> Result<(), Error> {
        self.call(Method::DELETE, "/faults", None).await.map(|_| ())
    }

    /// `GET /__deskd/requests?{query}`: the journal's entries, oldest first.
    pub async fn requests(&self, query: &str) -> Result<Vec<Value>, Error> {
        let v = self
            .call(Method::GET, &format!("/requests?{query}"), None)
            .await?;
        Ok(v["requests"].as_array().cloned().unwrap_or_default())
    }

    /// `POST /__deskd/clock`, e.g. `{"advance": "24h"}`.
    pub async fn clock(&self, change: &Value) -> Result<Value, Error> {
        self.call(Method::POST, "/clock", Some(change)).await
    }

    /// `POST /__deskd/jobs/hold`: jobs stay `queued`.
    pub async fn hold_jobs(&self) -> Result<Value, Error> {
        self.call(Method::POST, "/jobs/hold", None).await
    }

    /// `POST /__deskd/jobs/release`.
    pub async fn release_jobs(&self) -> Result<Value, Error> {
        self.call(Method::POST, "/jobs/release", None).await
    }

    /// `POST /__deskd/jobs/step`: while jobs are held, runs `items` more items.
    pub async fn step_jobs(&self, items: u64) -> Result<Value, Error> {
        self.call(Method::POST, "/jobs/step", Some(&json!({ "items": items })))
            .await
    }
}
