//! Timestamps as Zendesk writes them. Stored as Unix seconds; shown in UTC with second precision.

use chrono::{DateTime, Utc};

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    Utc::now().timestamp()
}

/// `2023-09-18T23:28:11Z`, the format of every `*_at` field.
pub fn iso(ts: i64) -> String {
    match DateTime::<Utc>::from_timestamp(ts, 0) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "1970-01-01T00:00:00Z".to_owned(),
    }
}

/// `2023-09-18 23:26:10 +0000`, the format of a completed job's message.
pub fn job_message(ts: i64) -> String {
    match DateTime::<Utc>::from_timestamp(ts, 0) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S +0000").to_string(),
        None => "1970-01-01 00:00:00 +0000".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_zendesk() {
        assert_eq!(iso(1_695_079_691), "2023-09-18T23:28:11Z");
        assert_eq!(job_message(1_695_079_570), "2023-09-18 23:26:10 +0000");
    }
}
