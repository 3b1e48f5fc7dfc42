//! Permanent deletion reaches past the user's row: the bulk jobs that carried the user's data
//! keep it in their stored items and result entries until they expire. The rules for finding and
//! scrubbing it there.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::text::normalize;

/// What identifies an erased user in job data: its id, and the normalised values of its
/// identities, email and external id.
#[derive(Clone, Debug)]
pub struct Erased {
    pub user_id: i64,
    pub values: HashSet<String>,
}

impl Erased {
    pub fn new<'a>(user_id: i64, values: impl IntoIterator<Item = &'a str>) -> Self {
        Erased {
            user_id,
            values: values
                .into_iter()
                .map(normalize)
                .filter(|v| !v.is_empty())
                .collect(),
        }
    }

    /// Learns the values an item known to be about this user called it by (its `email`,
    /// `external_id`, identity values), so that other items using them are found too: by the
    /// time a user is erased, soft deletion has already released its own identities.
    pub fn learn_from(&mut self, item: &Value) {
        let mut add = |v: Option<&Value>| {
            if let Some(s) = v
                .and_then(Value::as_str)
                .map(normalize)
                .filter(|s| !s.is_empty())
            {
                self.values.insert(s);
            }
        };
        add(item.get("email"));
        add(item.get("external_id"));
        if let Some(list) = item.get("identities").and_then(Value::as_array) {
            for i in list {
                add(i.get("value"));
            }
        }
    }

    /// Whether a job item is about this user: it names the user's id, or holds one of its
    /// values anywhere (an email, an external id, an identity of a nested list).
    pub fn named_by(&self, item: &Value) -> bool {
        let id_matches = item
            .get("id")
            .is_some_and(|v| crate::input::parse_int(v).ok().flatten() == Some(self.user_id));
        id_matches || self.holds_value(item)
    }

    fn holds_value(&self, v: &Value) -> bool {
        match v {
            Value::String(s) => {
                let n = normalize(s);
                self.values.contains(&n) || self.values.iter().any(|x| n.contains(x.as_str()))
            }
            Value::Array(a) => a.iter().any(|x| self.holds_value(x)),
            Value::Object(o) => o.values().any(|x| self.holds_value(x)),
            _ => false,
        }
    }

    /// Whether a result entry is about this user: the entry of a scrubbed item, one naming the
    /// user's id, or one echoing one of its values (an `email`, a `details` sentence).
    pub fn in_result(&self, entry: &Value, scrubbed_item: bool) -> bool {
        scrubbed_item
            || entry.get("id").and_then(Value::as_i64) == Some(self.user_id)
            || self.holds_value(entry)
    }
}

/// What is left of a scrubbed item: nothing of the user (run later, it is an invalid item).
pub fn scrubbed_item() -> Value {
    Value::Object(Map::new())
}

/// What is left of a scrubbed result entry: its position and outcome (index, id, status,
/// action, success, error code), none of the echoed data nor the details sentence.
pub fn scrubbed_result(entry: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(o) = entry {
        for key in ["index", "id", "action", "status", "success", "error"] {
            if let Some(v) = o.get(key) {
                out.insert(key.to_owned(), v.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_user_by_id_or_value_anywhere() {
        let e = Erased::new(5, ["Roger@Example.com", "ext-9", ""]);
        assert!(e.named_by(&json!({"id": 5, "notes": "x"})));
        assert!(e.named_by(&json!({"id": "5"})));
        assert!(e.named_by(&json!({"name": "R", "email": "roger@example.COM"})));
        assert!(
            e.named_by(&json!({"identities": [{"type": "email", "value": "ROGER@example.com"}]}))
        );
        assert!(e.named_by(&json!({"external_id": "EXT-9"})));
        assert!(!e.named_by(&json!({"id": 6, "email": "other@example.com"})));
        let entry = json!({"index": 2, "error": "DuplicateValue", "details": "Email: roger@example.com is already being used"});
        assert!(e.in_result(&entry, false));
        assert_eq!(
            scrubbed_result(&entry),
            json!({"index": 2, "error": "DuplicateValue"})
        );
        assert!(e.in_result(&json!({"index": 0, "id": 5, "status": "Created"}), false));
        assert!(!e.in_result(&json!({"index": 0, "id": 6, "status": "Created"}), false));
        let mut e = Erased::new(5, []);
        assert!(!e.named_by(&json!({"email": "r@example.com"})));
        e.learn_from(&json!({"email": "R@example.com", "identities": [{"type": "phone_number", "value": "+1 555"}]}));
        assert!(e.named_by(&json!({"email": "r@EXAMPLE.com"})));
        assert!(e.named_by(&json!({"phone": "+1 555"})));
    }
}
