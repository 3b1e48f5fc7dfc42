//! The ways the domain says no, in Zendesk's vocabulary.

use serde::Serialize;
use serde_json::{Map, Value};

/// One entry of a 422 body's `details.<field>` list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub description: String,
    /// Zendesk's code for the failure (`DuplicateValue`, `InvalidValue`); absent on some format
    /// errors, as recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// Validation failures keyed by field, in the order they were found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationErrors {
    pub fields: Vec<(String, FieldError)>,
}

impl ValidationErrors {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// `<Field>: <message>` with Zendesk's humanised prefix.
    pub fn add(&mut self, field: &str, message: &str, code: Option<&'static str>) {
        let description = format!("{}: {}", crate::text::humanize(field), message);
        self.fields.push((
            field.to_owned(),
            FieldError {
                description,
                error: code,
            },
        ));
    }

    /// `<label>: <message>` under `field`: for custom fields, whose label is their title.
    pub fn add_labelled(
        &mut self,
        field: &str,
        label: &str,
        message: &str,
        code: Option<&'static str>,
    ) {
        self.fields.push((
            field.to_owned(),
            FieldError {
                description: format!("{label}: {message}"),
                error: code,
            },
        ));
    }

    pub fn single(field: &str, message: &str, code: Option<&'static str>) -> Self {
        let mut e = ValidationErrors::default();
        e.add(field, message, code);
        e
    }

    pub fn duplicate_email(email: &str) -> Self {
        ValidationErrors::single(
            "email",
            &format!("{} is already being used by another user", email.trim()),
            Some("DuplicateValue"),
        )
    }

    /// The `details` object of a 422 body.
    pub fn details(&self) -> Value {
        let mut map = Map::new();
        for (field, err) in &self.fields {
            let entry = map
                .entry(field.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = entry {
                list.push(serde_json::to_value(err).unwrap_or(Value::Null));
            }
        }
        Value::Object(map)
    }

    /// The code a bulk result item carries for this failure.
    pub fn code(&self) -> &'static str {
        self.fields
            .first()
            .and_then(|(_, e)| e.error)
            .unwrap_or("InvalidValue")
    }

    /// A one-line human sentence for a bulk result item.
    pub fn sentence(&self) -> String {
        self.fields
            .iter()
            .map(|(_, e)| e.description.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A request the rules refuse. Nothing has been written when one of these is returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// 404 RecordNotFound.
    NotFound,
    /// 403 Forbidden: the caller's role does not allow this.
    Forbidden,
    /// 422 RecordInvalid with details.
    Invalid(ValidationErrors),
}

impl From<ValidationErrors> for Rejection {
    fn from(e: ValidationErrors) -> Self {
        Rejection::Invalid(e)
    }
}
