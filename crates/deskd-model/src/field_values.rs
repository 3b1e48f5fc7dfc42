//! Values of custom fields on users and organizations: what a write may put in `user_fields` /
//! `organization_fields`, and what a read shows.
//!
//! - Keys that are not defined fields are dropped, as Zendesk drops them (a write naming an
//!   undefined field succeeds and the key never reads back).
//! - A value for a defined field is checked and normalised by the field's type; a bad one is a
//!   422 `InvalidValue` under the field's key, prefixed with its title. `null` (and `""`) clears.
//! - A read lists every defined field, in the fields' order: `null` when unset, `false` for an
//!   unset checkbox.

use serde_json::{Map, Number, Value};

use crate::custom_field::{FieldDef, FieldKey, FieldKind, compile_regexp};
use crate::error::ValidationErrors;
use crate::input::{MAX_TEXT, has_nul, parse_int};

/// The supplied values for defined fields, normalised (`Null` to clear a key), or every bad
/// value's error. Undefined keys are left out.
pub fn accept(
    defs: &[FieldDef],
    supplied: &Map<String, Value>,
) -> Result<Map<String, Value>, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let mut out = Map::new();
    for (key, value) in supplied {
        let Some(def) = defs.iter().find(|d| &d.key == key) else {
            continue;
        };
        match normalise(def, value) {
            Ok(v) => {
                out.insert(key.clone(), v);
            }
            Err(message) => errors.add_labelled(key, &def.title, &message, Some("InvalidValue")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Merges accepted values into stored ones: `Null` removes the key.
pub fn merge(stored: &mut Map<String, Value>, accepted: Map<String, Value>) {
    for (k, v) in accepted {
        if v.is_null() {
            stored.remove(&k);
        } else {
            stored.insert(k, v);
        }
    }
}

/// What a read shows: every defined field, in order, with its stored value or its default.
pub fn project(defs: &[FieldKey], stored: &Map<String, Value>) -> Map<String, Value> {
    defs.iter()
        .map(|d| {
            let v = stored.get(&d.key).cloned().unwrap_or(match d.kind {
                FieldKind::Checkbox => Value::Bool(false),
                _ => Value::Null,
            });
            (d.key.clone(), v)
        })
        .collect()
}

fn blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// One value by its field's type.
fn normalise(def: &FieldDef, v: &Value) -> Result<Value, String> {
    if has_nul(v) {
        return Err("contains a character that is not allowed (U+0000)".to_owned());
    }
    if def.kind == FieldKind::Multiselect {
        return multiselect(def, v);
    }
    if blank(v) {
        return Ok(Value::Null);
    }
    match def.kind {
        FieldKind::Text | FieldKind::Textarea => text(v).map(Value::String),
        FieldKind::Regexp => {
            let s = text(v)?;
            let pattern = def.regexp_for_validation.as_deref().unwrap_or("");
            // The definition's pattern compiled when it was saved; one that no longer does
            // (a newer engine) accepts nothing rather than everything.
            match compile_regexp(pattern) {
                Ok(re) if re.is_match(s.as_str()) => Ok(Value::String(s)),
                _ => Err("is invalid".to_owned()),
            }
        }
        FieldKind::Checkbox => match v {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::Number(n) if n.as_i64() == Some(1) => Ok(Value::Bool(true)),
            Value::Number(n) if n.as_i64() == Some(0) => Ok(Value::Bool(false)),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(Value::Bool(true)),
                "false" | "0" | "no" => Ok(Value::Bool(false)),
                _ => Err("is invalid".to_owned()),
            },
            _ => Err("is invalid".to_owned()),
        },
        FieldKind::Date => match v {
            Value::String(s) => date(s.trim())
                .map(Value::String)
                .ok_or_else(|| "is not a valid date (YYYY-MM-DD)".to_owned()),
            _ => Err("is not a valid date (YYYY-MM-DD)".to_owned()),
        },
        FieldKind::Integer => match parse_int(v) {
            Ok(Some(i)) => Ok(Value::Number(i.into())),
            _ => Err("is not a number".to_owned()),
        },
        FieldKind::Decimal => decimal(v).ok_or_else(|| "is not a number".to_owned()),
        FieldKind::Dropdown => {
            let s = text(v)?;
            option_value(def, &s)
                .map(Value::String)
                .ok_or_else(|| format!("{} is not a valid option", s.trim()))
        }
        FieldKind::Lookup => match parse_int(v) {
            Ok(Some(i)) if i > 0 => Ok(Value::Number(i.into())),
            _ => Err("is not a record id".to_owned()),
        },
        FieldKind::Multiselect => multiselect(def, v),
    }
}

/// Strings as given, numbers and booleans as their text; nothing else.
fn text(v: &Value) -> Result<String, String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return Err("is invalid".to_owned()),
    };
    if s.chars().count() > MAX_TEXT {
        return Err(format!("is too long (maximum is {MAX_TEXT} characters)"));
    }
    Ok(s)
}

/// `YYYY-MM-DD`, alone or leading a timestamp (`2020-08-19T20:50:04.000Z`), reads back as
/// Zendesk showed it: `2020-08-19T00:00:00+00:00`.
fn date(s: &str) -> Option<String> {
    let day = s.get(..10)?;
    let rest = &s[10..];
    if !(rest.is_empty() || rest.starts_with('T') || rest.starts_with(' ')) {
        return None;
    }
    let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(format!("{}T00:00:00+00:00", d.format("%Y-%m-%d")))
}

/// A finite number, from a JSON number (kept as given) or a numeric string.
fn decimal(v: &Value) -> Option<Value> {
    match v {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(|_| v.clone()),
        Value::String(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Some(Value::Number(i.into()));
            }
            // Rust also reads "inf" and "NaN"; a decimal field holds neither.
            let f = t.parse::<f64>().ok().filter(|f| f.is_finite())?;
            Number::from_f64(f).map(Value::Number)
        }
        _ => None,
    }
}

/// The option whose value matches `s` (case-insensitively, as tags are), as stored.
fn option_value(def: &FieldDef, s: &str) -> Option<String> {
    let want = s.trim().to_lowercase();
    def.options
        .iter()
        .find(|o| o.value.to_lowercase() == want)
        .map(|o| o.value.clone())
}

/// A list of option values (a single string is a list of one); repeats collapse. Empty clears.
fn multiselect(def: &FieldDef, v: &Value) -> Result<Value, String> {
    let items: Vec<&Value> = match v {
        Value::Null => return Ok(Value::Null),
        Value::Array(items) => items.iter().collect(),
        Value::String(s) if s.trim().is_empty() => return Ok(Value::Null),
        Value::String(_) => vec![v],
        _ => return Err("is invalid".to_owned()),
    };
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for item in items {
        let s = match item {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err("is invalid".to_owned()),
        };
        let value =
            option_value(def, &s).ok_or_else(|| format!("{} is not a valid option", s.trim()))?;
        if !out.iter().any(|o| o.as_str() == Some(value.as_str())) {
            out.push(Value::String(value));
        }
    }
    Ok(if out.is_empty() {
        Value::Null
    } else {
        Value::Array(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custom_field::{FieldInput, Resource, plan_create, read_input};
    use serde_json::json;

    fn def(v: Value) -> FieldDef {
        let input: FieldInput = read_input(v.as_object().unwrap()).unwrap();
        plan_create(Resource::User, &input, &[], 0).unwrap()
    }

    fn defs() -> Vec<FieldDef> {
        vec![
            def(json!({"key": "notes", "title": "Notes"})),
            def(json!({"key": "vip", "title": "VIP", "type": "checkbox"})),
            def(json!({"key": "born", "title": "Born", "type": "date"})),
            def(json!({"key": "seats", "title": "Seats", "type": "integer"})),
            def(json!({"key": "ratio", "title": "Ratio", "type": "decimal"})),
            def(
                json!({"key": "zip", "title": "Zip", "type": "regexp", "regexp_for_validation": "\\A[0-9]{5}\\z"}),
            ),
            def(
                json!({"key": "tier", "title": "Tier", "type": "dropdown", "custom_field_options": [{"name": "Gold", "value": "gold"}, {"name": "Silver", "value": "silver"}]}),
            ),
            def(
                json!({"key": "langs", "title": "Languages", "type": "multiselect", "custom_field_options": [{"name": "EN", "value": "en"}, {"name": "FR", "value": "fr"}]}),
            ),
            def(
                json!({"key": "manager", "title": "Manager", "type": "lookup", "relationship_target_type": "zen:user"}),
            ),
        ]
    }

    fn ok(v: Value) -> Value {
        Value::Object(accept(&defs(), v.as_object().unwrap()).unwrap())
    }

    fn err(v: Value) -> ValidationErrors {
        accept(&defs(), v.as_object().unwrap()).unwrap_err()
    }

    #[test]
    fn normalises_each_type() {
        assert_eq!(
            ok(json!({
                "notes": 12, "vip": "true", "born": "2020-08-19T20:50:04.000Z", "seats": "3",
                "ratio": "1.50", "zip": "12345", "tier": "GOLD", "langs": ["fr", "en", "fr"],
                "manager": "42", "undefined_key": "dropped"
            })),
            json!({
                "notes": "12", "vip": true, "born": "2020-08-19T00:00:00+00:00", "seats": 3,
                "ratio": 1.5, "zip": "12345", "tier": "gold", "langs": ["fr", "en"], "manager": 42
            })
        );
        assert_eq!(
            ok(json!({"born": "2021-02-03", "ratio": 2, "langs": "en", "vip": 0})),
            json!({"born": "2021-02-03T00:00:00+00:00", "ratio": 2, "langs": ["en"], "vip": false})
        );
        assert_eq!(
            ok(json!({"seats": "", "tier": null, "langs": [], "notes": ""})),
            json!({"seats": null, "tier": null, "langs": null, "notes": null})
        );
    }

    #[test]
    fn rejects_bad_values_under_the_key_with_the_title() {
        let e = err(
            json!({"seats": "three", "born": "2020-13-01", "zip": "1234", "tier": "bronze",
                           "langs": ["de"], "vip": "maybe", "ratio": "NaN", "manager": -1, "notes": {"a": 1}}),
        );
        let keys: Vec<&str> = e.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "seats", "born", "zip", "tier", "langs", "vip", "ratio", "manager", "notes"
            ]
        );
        assert_eq!(e.fields[0].1.description, "Seats: is not a number");
        assert_eq!(
            e.fields[3].1.description,
            "Tier: bronze is not a valid option"
        );
        assert!(
            e.fields
                .iter()
                .all(|(_, f)| f.error == Some("InvalidValue"))
        );
        assert!(accept(&defs(), json!({"notes": "a\u{0}b"}).as_object().unwrap()).is_err());
        assert!(accept(&defs(), json!({"born": "2020-01-01x"}).as_object().unwrap()).is_err());
        assert!(accept(&defs(), json!({"seats": 1.5}).as_object().unwrap()).is_err());
    }

    #[test]
    fn projection_lists_every_field_with_defaults() {
        let stored = json!({"seats": 3, "gone": 1});
        let keys: Vec<FieldKey> = defs().iter().map(FieldDef::as_key).collect();
        let shown = project(&keys, stored.as_object().unwrap());
        assert_eq!(shown.keys().next().map(String::as_str), Some("notes"));
        assert_eq!(shown["vip"], json!(false));
        assert_eq!(shown["seats"], json!(3));
        assert_eq!(shown["tier"], Value::Null);
        assert!(!shown.contains_key("gone"));
        assert_eq!(project(&[], stored.as_object().unwrap()), Map::new());
    }

    #[test]
    fn merge_clears_on_null() {
        let mut stored = json!({"a": 1, "b": 2}).as_object().unwrap().clone();
        merge(
            &mut stored,
            json!({"a": null, "c": 3}).as_object().unwrap().clone(),
        );
        assert_eq!(Value::Object(stored), json!({"b": 2, "c": 3}));
    }
}
