//! Custom user fields and organization fields (`/user_fields`, `/organization_fields`): the
//! definitions, how a request object reads into one, and the plans for create, update, reorder
//! and options. What a field's *value* may be is in [`crate::field_values`].

use serde_json::{Map, Value, json};

use crate::error::ValidationErrors;
use crate::input::{MAX_TEXT, has_nul};
use crate::time::iso;

const MAX_SHORT: usize = 255;

/// Which resource a field belongs to; the two share every rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    User,
    Organization,
}

impl Resource {
    /// The value stored in the `resource` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::User => "user",
            Resource::Organization => "organization",
        }
    }

    /// The collection path and key: `user_fields`.
    pub fn plural(self) -> &'static str {
        match self {
            Resource::User => "user_fields",
            Resource::Organization => "organization_fields",
        }
    }

    /// The single object's key: `user_field`.
    pub fn singular(self) -> &'static str {
        match self {
            Resource::User => "user_field",
            Resource::Organization => "organization_field",
        }
    }

    /// The reorder body's key: `user_field_ids`.
    pub fn ids_key(self) -> &'static str {
        match self {
            Resource::User => "user_field_ids",
            Resource::Organization => "organization_field_ids",
        }
    }
}

/// Zendesk's custom field types for users and organizations. `tagger` is the older name of
/// `dropdown` and reads as it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Textarea,
    Checkbox,
    Date,
    Integer,
    Decimal,
    Regexp,
    Dropdown,
    Multiselect,
    Lookup,
}

impl FieldKind {
    pub const ALL: [FieldKind; 10] = [
        FieldKind::Text,
        FieldKind::Textarea,
        FieldKind::Checkbox,
        FieldKind::Date,
        FieldKind::Integer,
        FieldKind::Decimal,
        FieldKind::Regexp,
        FieldKind::Dropdown,
        FieldKind::Multiselect,
        FieldKind::Lookup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Textarea => "textarea",
            FieldKind::Checkbox => "checkbox",
            FieldKind::Date => "date",
            FieldKind::Integer => "integer",
            FieldKind::Decimal => "decimal",
            FieldKind::Regexp => "regexp",
            FieldKind::Dropdown => "dropdown",
            FieldKind::Multiselect => "multiselect",
            FieldKind::Lookup => "lookup",
        }
    }

    pub fn parse(s: &str) -> Option<FieldKind> {
        let s = s.trim().to_ascii_lowercase();
        if s == "tagger" {
            return Some(FieldKind::Dropdown);
        }
        FieldKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Dropdown and multiselect fields carry `custom_field_options`.
    pub fn has_options(self) -> bool {
        matches!(self, FieldKind::Dropdown | FieldKind::Multiselect)
    }
}

/// One choice of a dropdown or multiselect field: `name` is shown, `value` is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldOption {
    /// 0 until the store gives it one.
    pub id: i64,
    pub name: String,
    pub raw_name: String,
    pub value: String,
    pub position: i64,
}

/// A field definition as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDef {
    /// 0 until the store gives it one.
    pub id: i64,
    pub resource: Resource,
    pub kind: FieldKind,
    pub key: String,
    pub title: String,
    pub raw_title: String,
    pub description: String,
    pub raw_description: String,
    pub position: i64,
    pub active: bool,
    pub regexp_for_validation: Option<String>,
    /// Checkbox fields only.
    pub tag: Option<String>,
    pub options: Vec<FieldOption>,
    /// Lookup fields only: `zen:user`, `zen:organization`, `zen:ticket`, `zen:custom_object:KEY`.
    pub relationship_target_type: Option<String>,
    pub relationship_filter: Option<Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a read needs of a field to show its value: its key and type, in display order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldKey {
    pub key: String,
    pub kind: FieldKind,
}

impl FieldDef {
    pub fn as_key(&self) -> FieldKey {
        FieldKey {
            key: self.key.clone(),
            kind: self.kind,
        }
    }

    pub fn url(&self, base: &str) -> String {
        format!("{base}/{}/{}.json", self.resource.plural(), self.id)
    }

    pub fn option_wire(&self, o: &FieldOption, base: &str) -> Value {
        json!({
            "url": format!("{base}/{}/{}/options/{}.json", self.resource.plural(), self.id, o.id),
            "id": o.id,
            "name": o.name,
            "raw_name": o.raw_name,
            "value": o.value,
            "position": o.position,
        })
    }

    /// The field as Zendesk shows it, in its documented key order; the type-specific keys only
    /// where they apply.
    pub fn to_wire(&self, base: &str) -> Value {
        let mut m = Map::new();
        m.insert("url".into(), json!(self.url(base)));
        m.insert("id".into(), json!(self.id));
        m.insert("type".into(), json!(self.kind.as_str()));
        m.insert("key".into(), json!(self.key));
        m.insert("title".into(), json!(self.title));
        m.insert("description".into(), json!(self.description));
        m.insert("raw_title".into(), json!(self.raw_title));
        m.insert("raw_description".into(), json!(self.raw_description));
        m.insert("position".into(), json!(self.position));
        m.insert("active".into(), json!(self.active));
        m.insert("system".into(), json!(false));
        m.insert(
            "regexp_for_validation".into(),
            json!(self.regexp_for_validation),
        );
        m.insert("created_at".into(), json!(iso(self.created_at)));
        m.insert("updated_at".into(), json!(iso(self.updated_at)));
        if self.kind == FieldKind::Checkbox {
            m.insert("tag".into(), json!(self.tag));
        }
        if self.kind.has_options() {
            let options: Vec<Value> = self
                .options
                .iter()
                .map(|o| self.option_wire(o, base))
                .collect();
            m.insert("custom_field_options".into(), Value::Array(options));
        }
        if self.kind == FieldKind::Lookup {
            m.insert(
                "relationship_target_type".into(),
                json!(self.relationship_target_type),
            );
            m.insert(
                "relationship_filter".into(),
                self.relationship_filter
                    .clone()
                    .unwrap_or_else(|| json!({})),
            );
        }
        Value::Object(m)
    }
}

/// An option as a request gives it; `id` names an existing option to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionInput {
    pub id: Option<i64>,
    pub name: String,
    pub raw_name: Option<String>,
    pub value: String,
}

/// The keys of a `user_field` / `organization_field` object deskd understands. Read-only keys
/// (`id`, `url`, `system`, `created_at`, …) and unknown ones are ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldInput {
    pub kind: Option<String>,
    pub key: Option<String>,
    pub title: Option<String>,
    pub raw_title: Option<String>,
    pub description: Option<Option<String>>,
    pub raw_description: Option<Option<String>>,
    pub position: Option<i64>,
    pub active: Option<bool>,
    pub regexp_for_validation: Option<Option<String>>,
    pub tag: Option<Option<String>>,
    pub options: Option<Vec<OptionInput>>,
    pub relationship_target_type: Option<Option<String>>,
    pub relationship_filter: Option<Option<Value>>,
}

/// Reads the request's field object; every bad value is a 422 on its key.
pub fn read_input(obj: &Map<String, Value>) -> Result<FieldInput, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let mut input = FieldInput::default();
    for (k, v) in obj {
        if has_nul(v) {
            errors.add(
                k,
                "contains a character that is not allowed (U+0000)",
                Some("InvalidValue"),
            );
            continue;
        }
        match k.as_str() {
            "type" => input.kind = string(v, k, MAX_SHORT, &mut errors).flatten(),
            "key" => input.key = string(v, k, MAX_SHORT, &mut errors).flatten(),
            "title" => input.title = string(v, k, MAX_SHORT, &mut errors).flatten(),
            "raw_title" => input.raw_title = string(v, k, MAX_SHORT, &mut errors).flatten(),
            "description" => input.description = string(v, k, MAX_TEXT, &mut errors),
            "raw_description" => input.raw_description = string(v, k, MAX_TEXT, &mut errors),
            "regexp_for_validation" => {
                input.regexp_for_validation = string(v, k, MAX_TEXT, &mut errors)
            }
            "tag" => input.tag = string(v, k, MAX_SHORT, &mut errors),
            "relationship_target_type" => {
                input.relationship_target_type = string(v, k, MAX_SHORT, &mut errors)
            }
            "position" => match crate::input::parse_int(v) {
                Ok(p) => input.position = p,
                Err(()) => errors.add(k, "is not a number", Some("InvalidValue")),
            },
            "active" => match flag(v) {
                Some(b) => input.active = b,
                None => errors.add(k, "is invalid", Some("InvalidValue")),
            },
            "relationship_filter" => match v {
                Value::Null => input.relationship_filter = Some(None),
                Value::Object(_) => input.relationship_filter = Some(Some(v.clone())),
                _ => errors.add(k, "is invalid", Some("InvalidValue")),
            },
            "custom_field_options" => match v {
                Value::Null => input.options = Some(Vec::new()),
                Value::Array(items) => match read_options(items) {
                    Ok(list) => input.options = Some(list),
                    Err(e) => errors.fields.extend(e.fields),
                },
                _ => errors.add(k, "is invalid", Some("InvalidValue")),
            },
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(input)
    } else {
        Err(errors)
    }
}

/// A string key: strings as given (trimmed for short ones), numbers and booleans as their text.
fn string(
    v: &Value,
    key: &str,
    max: usize,
    errors: &mut ValidationErrors,
) -> Option<Option<String>> {
    let s = match v {
        Value::Null => return Some(None),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => {
            errors.add(key, "is invalid", Some("InvalidValue"));
            return None;
        }
    };
    if s.chars().count() > max {
        errors.add(
            key,
            &format!("is too long (maximum is {max} characters)"),
            Some("InvalidValue"),
        );
        return None;
    }
    Some(Some(if max == MAX_SHORT {
        s.trim().to_owned()
    } else {
        s
    }))
}

fn flag(v: &Value) -> Option<Option<bool>> {
    match v {
        Value::Null => Some(None),
        Value::Bool(b) => Some(Some(*b)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(Some(true)),
            "false" | "0" => Some(Some(false)),
            _ => None,
        },
        Value::Number(n) if n.as_i64() == Some(1) => Some(Some(true)),
        Value::Number(n) if n.as_i64() == Some(0) => Some(Some(false)),
        _ => None,
    }
}

/// One `custom_field_option` object (the options endpoint's body, or one item of a field's list).
pub fn read_option(obj: &Map<String, Value>) -> Result<OptionInput, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    if obj.values().any(has_nul) {
        errors.add(
            "custom_field_options",
            "contains a character that is not allowed (U+0000)",
            Some("InvalidValue"),
        );
        return Err(errors);
    }
    let id = match obj.get("id").map(crate::input::parse_int) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(id))) if id > 0 => Some(id),
        _ => {
            errors.add(
                "custom_field_options",
                "id is not a number",
                Some("InvalidValue"),
            );
            None
        }
    };
    let name = obj
        .get("name")
        .and_then(|v| string(v, "custom_field_options", MAX_SHORT, &mut errors))
        .flatten()
        .unwrap_or_default();
    let raw_name = obj
        .get("raw_name")
        .and_then(|v| string(v, "custom_field_options", MAX_SHORT, &mut errors))
        .flatten()
        .filter(|s| !s.is_empty());
    let value = obj
        .get("value")
        .and_then(|v| string(v, "custom_field_options", MAX_SHORT, &mut errors))
        .flatten()
        .unwrap_or_default();
    if name.is_empty() {
        errors.add(
            "custom_field_options",
            "name cannot be blank",
            Some("BlankValue"),
        );
    }
    if value.is_empty() {
        errors.add(
            "custom_field_options",
            "value cannot be blank",
            Some("BlankValue"),
        );
    } else if value.chars().any(char::is_whitespace) {
        // The value is a tag: Zendesk's tags have no white space.
        errors.add(
            "custom_field_options",
            &format!("value {value} cannot contain spaces"),
            Some("InvalidValue"),
        );
    }
    if errors.is_empty() {
        Ok(OptionInput {
            id,
            name,
            raw_name,
            value,
        })
    } else {
        Err(errors)
    }
}

fn read_options(items: &[Value]) -> Result<Vec<OptionInput>, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item.as_object().map(read_option) {
            Some(Ok(o)) => out.push(o),
            Some(Err(e)) => errors.fields.extend(e.fields),
            None => errors.add("custom_field_options", "is invalid", Some("InvalidValue")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A key: letters, digits and underscores, not only digits (Zendesk's rule, so a key never
/// reads as an id in `/user_fields/{key}`).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.chars().all(|c| c.is_ascii_digit())
}

/// Compiles a `regexp_for_validation`, bounded so a hostile pattern cannot take the server's
/// memory; the engine matches in linear time.
pub fn compile_regexp(pattern: &str) -> Result<regex_automata::meta::Regex, String> {
    regex_automata::meta::Regex::builder()
        .configure(
            regex_automata::meta::Config::new()
                .nfa_size_limit(Some(1 << 20))
                .onepass_size_limit(Some(1 << 20))
                .hybrid_cache_capacity(1 << 20)
                .dfa_size_limit(Some(1 << 20)),
        )
        .build(pattern)
        .map_err(|e| e.to_string())
}

/// Options as the plan keeps them: an `id` names one of `existing` (kept, renamed); any other
/// id, or none, is a new option. Positions follow the list. Values are unique in a field.
fn plan_options(
    given: &[OptionInput],
    existing: &[FieldOption],
    errors: &mut ValidationErrors,
) -> Vec<FieldOption> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(given.len());
    for (i, o) in given.iter().enumerate() {
        if !seen.insert(o.value.to_lowercase()) {
            errors.add(
                "custom_field_options",
                &format!("value {} is used by more than one option", o.value),
                Some("DuplicateValue"),
            );
            continue;
        }
        let id =
            o.id.filter(|id| existing.iter().any(|e| e.id == *id))
                .unwrap_or(0);
        out.push(FieldOption {
            id,
            name: o.name.clone(),
            raw_name: o.raw_name.clone().unwrap_or_else(|| o.name.clone()),
            value: o.value.clone(),
            position: i as i64,
        });
    }
    out
}

/// Checks the type-specific keys of `def` once everything is applied.
fn check_kind(def: &FieldDef, errors: &mut ValidationErrors) {
    match def.kind {
        FieldKind::Regexp => match &def.regexp_for_validation {
            Some(p) if !p.is_empty() => {
                if let Err(e) = compile_regexp(p) {
                    errors.add(
                        "regexp_for_validation",
                        &format!("is not a valid regular expression ({})", first_line(&e)),
                        Some("InvalidValue"),
                    );
                }
            }
            _ => errors.add(
                "regexp_for_validation",
                "cannot be blank",
                Some("BlankValue"),
            ),
        },
        FieldKind::Dropdown | FieldKind::Multiselect if def.options.is_empty() => {
            errors.add(
                "custom_field_options",
                "must have at least one option",
                Some("BlankValue"),
            );
        }
        FieldKind::Lookup => match def.relationship_target_type.as_deref() {
            Some(t) if valid_target_type(t) => {}
            Some(t) if !t.is_empty() => errors.add(
                "relationship_target_type",
                &format!("{t} is not a valid target type"),
                Some("InvalidValue"),
            ),
            _ => errors.add(
                "relationship_target_type",
                "cannot be blank",
                Some("BlankValue"),
            ),
        },
        _ => {}
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn valid_target_type(t: &str) -> bool {
    matches!(t, "zen:user" | "zen:organization" | "zen:ticket")
        || t.strip_prefix("zen:custom_object:")
            .is_some_and(|k| !k.is_empty() && valid_key(k))
}

/// `POST /user_fields`: a new field from `input`, given the fields that exist. `type` defaults
/// to text; `key` and `title` are required; the key is unique among the resource's fields.
pub fn plan_create(
    resource: Resource,
    input: &FieldInput,
    existing: &[FieldDef],
    now: i64,
) -> Result<FieldDef, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let kind = match input.kind.as_deref().filter(|k| !k.is_empty()) {
        None => FieldKind::Text,
        Some(k) => FieldKind::parse(k).unwrap_or_else(|| {
            errors.add("type", "is not included in the list", Some("InvalidValue"));
            FieldKind::Text
        }),
    };
    let key = input.key.clone().unwrap_or_default();
    if key.is_empty() {
        errors.add("key", "cannot be blank", Some("BlankValue"));
    } else if !valid_key(&key) {
        errors.add(
            "key",
            "can only contain letters, numbers and underscores, and cannot be only numbers",
            Some("InvalidValue"),
        );
    } else if existing.iter().any(|f| f.key == key) {
        errors.add("key", &duplicate_key_message(&key), Some("DuplicateValue"));
    }
    let title = input.title.clone().unwrap_or_default();
    if title.is_empty() {
        errors.add("title", "cannot be blank", Some("BlankValue"));
    }
    let options = plan_options(input.options.as_deref().unwrap_or(&[]), &[], &mut errors);
    let description = input.description.clone().flatten().unwrap_or_default();
    let position = input
        .position
        .unwrap_or_else(|| existing.iter().map(|f| f.position + 1).max().unwrap_or(0));
    let def = FieldDef {
        id: 0,
        resource,
        kind,
        raw_title: input.raw_title.clone().unwrap_or_else(|| title.clone()),
        title,
        raw_description: input
            .raw_description
            .clone()
            .flatten()
            .unwrap_or_else(|| description.clone()),
        description,
        position,
        active: input.active.unwrap_or(true),
        regexp_for_validation: input
            .regexp_for_validation
            .clone()
            .flatten()
            .filter(|_| kind == FieldKind::Regexp),
        tag: input
            .tag
            .clone()
            .flatten()
            .filter(|t| kind == FieldKind::Checkbox && !t.is_empty()),
        options: if kind.has_options() {
            options
        } else {
            Vec::new()
        },
        relationship_target_type: input
            .relationship_target_type
            .clone()
            .flatten()
            .filter(|_| kind == FieldKind::Lookup),
        relationship_filter: input
            .relationship_filter
            .clone()
            .flatten()
            .filter(|_| kind == FieldKind::Lookup),
        key,
        created_at: now,
        updated_at: now,
    };
    check_kind(&def, &mut errors);
    if errors.is_empty() {
        Ok(def)
    } else {
        Err(errors)
    }
}

/// The message of a taken key, shared with the store's reaction to a lost race.
pub fn duplicate_key_message(key: &str) -> String {
    format!("{key} has already been taken")
}

/// `PUT /user_fields/{id}`: applies the supplied keys. `type` and `key` cannot change (sending
/// the current ones back, as clients do, is fine). Options, when given, replace the list.
/// Returns the field as it must be stored and whether anything changed.
pub fn plan_update(
    input: &FieldInput,
    current: &FieldDef,
    now: i64,
) -> Result<(FieldDef, bool), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let mut def = current.clone();
    if let Some(k) = input.kind.as_deref().filter(|k| !k.is_empty())
        && FieldKind::parse(k) != Some(current.kind)
    {
        errors.add("type", "cannot be changed", Some("InvalidValue"));
    }
    if let Some(key) = input.key.as_deref().filter(|k| !k.is_empty())
        && key != current.key
    {
        errors.add("key", "cannot be changed", Some("InvalidValue"));
    }
    if let Some(title) = &input.title {
        if title.is_empty() {
            errors.add("title", "cannot be blank", Some("BlankValue"));
        }
        if input.raw_title.is_none() && def.raw_title == def.title {
            def.raw_title = title.clone();
        }
        def.title = title.clone();
    }
    if let Some(raw) = &input.raw_title {
        def.raw_title = raw.clone();
    }
    if let Some(d) = &input.description {
        let d = d.clone().unwrap_or_default();
        if input.raw_description.is_none() && def.raw_description == def.description {
            def.raw_description = d.clone();
        }
        def.description = d;
    }
    if let Some(raw) = &input.raw_description {
        def.raw_description = raw.clone().unwrap_or_default();
    }
    if let Some(p) = input.position {
        def.position = p;
    }
    if let Some(a) = input.active {
        def.active = a;
    }
    if def.kind == FieldKind::Regexp
        && let Some(r) = &input.regexp_for_validation
    {
        def.regexp_for_validation = r.clone();
    }
    if def.kind == FieldKind::Checkbox
        && let Some(t) = &input.tag
    {
        def.tag = t.clone().filter(|t| !t.is_empty());
    }
    if def.kind.has_options()
        && let Some(options) = &input.options
    {
        def.options = plan_options(options, &current.options, &mut errors);
    }
    if def.kind == FieldKind::Lookup {
        if let Some(t) = &input.relationship_target_type {
            def.relationship_target_type = t.clone();
        }
        if let Some(f) = &input.relationship_filter {
            def.relationship_filter = f.clone();
        }
    }
    check_kind(&def, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let changed = def != *current;
    if changed {
        def.updated_at = now.max(current.updated_at);
    }
    Ok((def, changed))
}

/// `POST /user_fields/{id}/options`: an option with the id of one of the field's options
/// updates it; otherwise a new one is appended. Returns the field to store and whether the
/// option is new.
pub fn plan_option(
    field: &FieldDef,
    input: &OptionInput,
    now: i64,
) -> Result<(FieldDef, bool), ValidationErrors> {
    if !field.kind.has_options() {
        return Err(ValidationErrors::single(
            "custom_field_option",
            &format!("a {} field has no options", field.kind.as_str()),
            Some("InvalidValue"),
        ));
    }
    let mut list: Vec<OptionInput> = field
        .options
        .iter()
        .map(|o| OptionInput {
            id: Some(o.id),
            name: o.name.clone(),
            raw_name: Some(o.raw_name.clone()),
            value: o.value.clone(),
        })
        .collect();
    let existing = input
        .id
        .and_then(|id| list.iter().position(|o| o.id == Some(id)));
    match existing {
        Some(i) => list[i] = input.clone(),
        None => list.push(OptionInput {
            id: None,
            ..input.clone()
        }),
    }
    let mut errors = ValidationErrors::default();
    let mut def = field.clone();
    def.options = plan_options(&list, &field.options, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    if def != *field {
        def.updated_at = now.max(field.updated_at);
    }
    Ok((def, existing.is_none()))
}

/// `DELETE /user_fields/{id}/options/{option_id}`: the field without that option; `None` when
/// it has no such option. Removing the last option of a dropdown is refused, as an update
/// leaving none would be.
pub fn plan_option_removal(
    field: &FieldDef,
    option_id: i64,
    now: i64,
) -> Option<Result<FieldDef, ValidationErrors>> {
    field.options.iter().position(|o| o.id == option_id)?;
    let mut def = field.clone();
    def.options.retain(|o| o.id != option_id);
    for (i, o) in def.options.iter_mut().enumerate() {
        o.position = i as i64;
    }
    let mut errors = ValidationErrors::default();
    check_kind(&def, &mut errors);
    if !errors.is_empty() {
        return Some(Err(errors));
    }
    def.updated_at = now.max(field.updated_at);
    Some(Ok(def))
}

/// `PUT /user_fields/reorder`: the positions after the reorder, as `(id, position)` pairs for
/// every field. The listed fields come first in the given order; any field left out keeps its
/// relative place after them. An id that is not a field, or listed twice, is a 422.
pub fn plan_reorder(
    resource: Resource,
    fields: &[FieldDef],
    ids: &[i64],
) -> Result<Vec<(i64, i64)>, ValidationErrors> {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !fields.iter().any(|f| f.id == *id) {
            return Err(ValidationErrors::single(
                resource.ids_key(),
                &format!("{id} is not a field"),
                Some("InvalidValue"),
            ));
        }
        if !seen.insert(*id) {
            return Err(ValidationErrors::single(
                resource.ids_key(),
                &format!("{id} is listed more than once"),
                Some("InvalidValue"),
            ));
        }
    }
    let rest = fields.iter().map(|f| f.id).filter(|id| !seen.contains(id));
    Ok(ids
        .iter()
        .copied()
        .chain(rest)
        .enumerate()
        .map(|(i, id)| (id, i as i64))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(v: Value) -> FieldInput {
        read_input(v.as_object().unwrap()).unwrap()
    }

    fn create(v: Value, existing: &[FieldDef]) -> Result<FieldDef, ValidationErrors> {
        plan_create(Resource::User, &input(v), existing, 10)
    }

    #[test]
    fn creates_with_defaults_and_rejects_bad_keys() {
        let f = create(json!({"key": "plan", "title": "Plan"}), &[]).unwrap();
        assert_eq!(f.kind, FieldKind::Text);
        assert_eq!(f.raw_title, "Plan");
        assert!(f.active);
        assert_eq!(f.position, 0);
        let w = f.to_wire("http://h/api/v2");
        assert_eq!(w["system"], json!(false));
        assert!(w.get("custom_field_options").is_none());
        for bad in ["", "has space", "123", "dash-key"] {
            let e = create(json!({"key": bad, "title": "T"}), &[]).unwrap_err();
            assert_eq!(e.fields[0].0, "key", "{bad}");
        }
        let e = create(json!({"key": "plan", "title": "Plan"}), &[f.clone()]).unwrap_err();
        assert_eq!(e.fields[0].1.error, Some("DuplicateValue"));
        let e = create(json!({"key": "k"}), &[]).unwrap_err();
        assert_eq!(e.fields[0].0, "title");
        let e = create(json!({"key": "k", "title": "T", "type": "colour"}), &[]).unwrap_err();
        assert_eq!(e.fields[0].0, "type");
        let next = create(json!({"key": "b", "title": "B"}), &[f]).unwrap();
        assert_eq!(next.position, 1);
    }

    #[test]
    fn type_rules() {
        let e = create(json!({"key": "r", "title": "R", "type": "regexp"}), &[]).unwrap_err();
        assert_eq!(e.fields[0].0, "regexp_for_validation");
        let e = create(
            json!({"key": "r", "title": "R", "type": "regexp", "regexp_for_validation": "(("}),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.fields[0].0, "regexp_for_validation");
        assert!(
            create(
                json!({"key": "r", "title": "R", "type": "regexp", "regexp_for_validation": "\\A[0-9]+\\z"}),
                &[]
            )
            .is_ok()
        );
        let e = create(json!({"key": "d", "title": "D", "type": "dropdown"}), &[]).unwrap_err();
        assert_eq!(e.fields[0].0, "custom_field_options");
        let d = create(
            json!({"key": "d", "title": "D", "type": "tagger", "custom_field_options": [
                {"name": "Gold", "value": "gold"}, {"name": "Silver", "value": "silver"}]}),
            &[],
        )
        .unwrap();
        assert_eq!(d.kind, FieldKind::Dropdown);
        assert_eq!(d.options[1].position, 1);
        let e = create(
            json!({"key": "d", "title": "D", "type": "dropdown", "custom_field_options": [
                {"name": "Gold", "value": "gold"}, {"name": "Gold 2", "value": "GOLD"}]}),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.fields[0].1.error, Some("DuplicateValue"));
        let e = create(json!({"key": "l", "title": "L", "type": "lookup"}), &[]).unwrap_err();
        assert_eq!(e.fields[0].0, "relationship_target_type");
        let l = create(
            json!({"key": "l", "title": "L", "type": "lookup", "relationship_target_type": "zen:user"}),
            &[],
        )
        .unwrap();
        assert_eq!(l.to_wire("b")["relationship_filter"], json!({}));
    }

    #[test]
    fn update_keeps_key_and_type_and_replaces_options() {
        let mut d = create(
            json!({"key": "d", "title": "D", "type": "dropdown", "custom_field_options": [
                {"name": "Gold", "value": "gold"}, {"name": "Silver", "value": "silver"}]}),
            &[],
        )
        .unwrap();
        d.id = 5;
        d.options[0].id = 51;
        d.options[1].id = 52;
        let (same, changed) =
            plan_update(&input(json!({"key": "d", "type": "dropdown"})), &d, 20).unwrap();
        assert!(!changed);
        assert_eq!(same, d);
        assert!(plan_update(&input(json!({"key": "e"})), &d, 20).is_err());
        assert!(plan_update(&input(json!({"type": "text"})), &d, 20).is_err());
        let (u, changed) = plan_update(
            &input(json!({"title": "Tier", "custom_field_options": [
                {"id": 52, "name": "Silver!", "value": "silver"}, {"id": null, "name": "Bronze", "value": "bronze"}]})),
            &d,
            20,
        )
        .unwrap();
        assert!(changed);
        assert_eq!(u.raw_title, "Tier");
        assert_eq!(
            u.options
                .iter()
                .map(|o| (o.id, o.position))
                .collect::<Vec<_>>(),
            vec![(52, 0), (0, 1)]
        );
        assert_eq!(u.updated_at, 20);
        assert!(plan_update(&input(json!({"custom_field_options": []})), &d, 20).is_err());
    }

    #[test]
    fn options_and_reorder() {
        let mut d = create(
            json!({"key": "d", "title": "D", "type": "multiselect", "custom_field_options": [
                {"name": "A", "value": "a"}]}),
            &[],
        )
        .unwrap();
        d.id = 1;
        d.options[0].id = 11;
        let opt = |v: Value| read_option(v.as_object().unwrap()).unwrap();
        let (f, new) = plan_option(&d, &opt(json!({"name": "B", "value": "b"})), 5).unwrap();
        assert!(new);
        assert_eq!(f.options.len(), 2);
        let (f, new) =
            plan_option(&d, &opt(json!({"id": 11, "name": "A2", "value": "a"})), 5).unwrap();
        assert!(!new);
        assert_eq!(f.options[0].name, "A2");
        assert!(plan_option(&d, &opt(json!({"name": "A again", "value": "A"})), 5).is_err());
        assert!(
            read_option(
                json!({"name": "x", "value": "has space"})
                    .as_object()
                    .unwrap()
            )
            .is_err()
        );
        assert!(plan_option_removal(&d, 99, 5).is_none());
        assert!(plan_option_removal(&d, 11, 5).unwrap().is_err());

        let mut a = d.clone();
        a.id = 1;
        let mut b = d.clone();
        b.id = 2;
        let mut c = d;
        c.id = 3;
        let fields = [a, b, c];
        assert_eq!(
            plan_reorder(Resource::User, &fields, &[3, 1]).unwrap(),
            vec![(3, 0), (1, 1), (2, 2)]
        );
        assert!(plan_reorder(Resource::User, &fields, &[3, 3]).is_err());
        assert!(plan_reorder(Resource::User, &fields, &[4]).is_err());
    }
}
