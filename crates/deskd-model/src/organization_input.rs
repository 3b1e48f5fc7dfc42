//! Reading an `organization` object from a request body, and applying it to a record.
//!
//! The same leniency as for users: integers may come as numeric strings, booleans as `"true"`,
//! strings as numbers; a bad value of a known key is a 422 on that key; unknown and read-only
//! keys (`url`, `created_at`, …) are ignored.

use serde_json::{Map, Value};

use crate::error::ValidationErrors;
use crate::input::{MAX_TEXT, Patch, Reader};
use crate::organization::OrganizationRecord;
use crate::upsert::merge_fields;

const MAX_SHORT: usize = 255;

/// The fields of an `organization` object deskd understands.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrganizationInput {
    /// Only read for create_or_update, where it names the organization to update.
    pub id: Option<i64>,
    /// `Some(None)` when the key was given as `null` or blank: invalid on create and update.
    pub name: Patch<String>,
    pub external_id: Patch<String>,
    pub details: Patch<String>,
    pub notes: Patch<String>,
    pub group_id: Patch<i64>,
    pub shared_tickets: Option<bool>,
    pub shared_comments: Option<bool>,
    pub domain_names: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub organization_fields: Option<Map<String, Value>>,
}

impl OrganizationInput {
    /// Reads an `organization` object. `with_id` is true for create_or_update, where a present,
    /// non-blank `id` names the organization to update; elsewhere `id` is read-only and ignored.
    pub fn from_json(
        obj: &Map<String, Value>,
        with_id: bool,
    ) -> Result<OrganizationInput, ValidationErrors> {
        let mut r = Reader::new(obj);
        let mut input = OrganizationInput {
            id: if with_id { r.id() } else { None },
            name: r.text("name", MAX_SHORT),
            external_id: r.text("external_id", MAX_SHORT),
            details: r.text("details", MAX_TEXT),
            notes: r.text("notes", MAX_TEXT),
            group_id: r.int("group_id"),
            shared_tickets: r.boolean("shared_tickets").flatten(),
            shared_comments: r.boolean("shared_comments").flatten(),
            domain_names: r.list("domain_names"),
            tags: r.list("tags"),
            organization_fields: r.object("organization_fields").filter(|f| !f.is_empty()),
        };
        // A blank name is no name (rejected where a name is needed); a blank external_id clears it.
        if let Some(Some(name)) = &input.name {
            let trimmed = name.trim();
            input.name = Some((!trimmed.is_empty()).then(|| trimmed.to_owned()));
        }
        if let Some(Some(ext)) = &input.external_id {
            let trimmed = ext.trim();
            input.external_id = Some((!trimmed.is_empty()).then(|| trimmed.to_owned()));
        }
        if r.errors.is_empty() {
            Ok(input)
        } else {
            Err(r.errors)
        }
    }

    /// The external id this input would look an organization up by (create_or_update).
    pub fn lookup_external_id(&self) -> Option<&str> {
        self.external_id.as_ref().and_then(|e| e.as_deref())
    }

    /// The organization a create_or_update writes: the one named by `id` (an unknown id is then a
    /// 404, not a create), else `external_id_holder`, the holder of this input's external id.
    /// The name is no key. `None`: create one.
    pub fn create_or_update_target(&self, external_id_holder: Option<i64>) -> Option<i64> {
        self.id.or(external_id_holder)
    }

    /// A new organization from this input; the name is required.
    pub fn create(&self, now: i64) -> Result<OrganizationRecord, ValidationErrors> {
        let Some(Some(name)) = &self.name else {
            return Err(blank_name());
        };
        let mut org = OrganizationRecord::new(name.clone(), now);
        self.apply_fields(&mut org);
        Ok(org)
    }

    /// Applies the supplied keys to `org`; only those keys change. Returns whether anything did
    /// (and then `updated_at` is `now`).
    pub fn update(&self, org: &mut OrganizationRecord, now: i64) -> Result<bool, ValidationErrors> {
        let before = org.clone();
        match &self.name {
            Some(None) => return Err(blank_name()),
            Some(Some(name)) => org.name = name.clone(),
            None => {}
        }
        self.apply_fields(org);
        let changed = *org != before;
        if changed {
            org.updated_at = now;
        }
        Ok(changed)
    }

    fn apply_fields(&self, org: &mut OrganizationRecord) {
        if let Some(ext) = &self.external_id {
            org.external_id = ext.clone();
        }
        if let Some(details) = &self.details {
            org.details = details.clone();
        }
        if let Some(notes) = &self.notes {
            org.notes = notes.clone();
        }
        if let Some(group) = self.group_id {
            org.group_id = group;
        }
        if let Some(v) = self.shared_tickets {
            org.shared_tickets = v;
        }
        if let Some(v) = self.shared_comments {
            org.shared_comments = v;
        }
        if let Some(domains) = &self.domain_names {
            org.domain_names = domains.clone();
        }
        if let Some(tags) = &self.tags {
            org.tags = tags.clone();
        }
        if let Some(fields) = &self.organization_fields {
            merge_fields(&mut org.organization_fields, fields);
        }
    }
}

fn blank_name() -> ValidationErrors {
    ValidationErrors::single("name", "cannot be blank", Some("BlankValue"))
}

/// `Name: <name> has already been taken`, as recorded.
pub fn duplicate_name(name: &str) -> ValidationErrors {
    ValidationErrors::single(
        "name",
        &format!("{} has already been taken", name.trim()),
        Some("DuplicateValue"),
    )
}

pub fn duplicate_external_id(external_id: &str) -> ValidationErrors {
    ValidationErrors::single(
        "external_id",
        &format!("{} has already been taken", external_id.trim()),
        Some("DuplicateValue"),
    )
}

/// Names and external ids are unique across organizations, case-insensitively: `org` may keep
/// its own, but not take one that `name_holder` / `external_id_holder` (another id) has.
pub fn check_unique(
    org: &OrganizationRecord,
    name_holder: Option<i64>,
    external_id_holder: Option<i64>,
) -> Result<(), ValidationErrors> {
    if name_holder.is_some_and(|other| other != org.id) {
        return Err(duplicate_name(&org.name));
    }
    match &org.external_id {
        Some(ext) if external_id_holder.is_some_and(|other| other != org.id) => {
            Err(duplicate_external_id(ext))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> Result<OrganizationInput, ValidationErrors> {
        OrganizationInput::from_json(v.as_object().unwrap(), true)
    }

    #[test]
    fn lenient_types_are_accepted() {
        let o = read(
            json!({"name": " Acme ", "group_id": "12", "shared_tickets": "true",
            "shared_comments": 0, "tags": "a b,a", "domain_names": ["x.com", " y.org ", "x.com"],
            "external_id": "  ", "url": 5, "whatever": []}),
        )
        .unwrap();
        assert_eq!(o.name, Some(Some("Acme".into())));
        assert_eq!(o.group_id, Some(Some(12)));
        assert_eq!(o.shared_tickets, Some(true));
        assert_eq!(o.shared_comments, Some(false));
        assert_eq!(o.tags.unwrap(), ["a", "b"]);
        assert_eq!(o.domain_names.unwrap(), ["x.com", "y.org"]);
        assert_eq!(o.external_id, Some(None));
    }

    #[test]
    fn bad_values_name_their_field() {
        let e = read(
            json!({"name": [], "group_id": "abc", "shared_tickets": "yes",
            "domain_names": 5, "organization_fields": [], "id": "x"}),
        )
        .unwrap_err();
        let fields: Vec<&str> = e.fields.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "id",
                "name",
                "group_id",
                "shared_tickets",
                "domain_names",
                "organization_fields"
            ]
        );
    }

    #[test]
    fn create_needs_a_name() {
        for v in [json!({}), json!({"name": null}), json!({"name": "  "})] {
            let e = read(v).unwrap().create(1).unwrap_err();
            assert_eq!(e.fields[0].0, "name");
            assert_eq!(e.fields[0].1.error, Some("BlankValue"));
        }
    }

    #[test]
    fn update_changes_only_given_keys_and_merges_fields() {
        let mut org =
            read(json!({"name": "A", "notes": "n", "organization_fields": {"a": 1, "b": 2}}))
                .unwrap()
                .create(1)
                .unwrap();
        let changed = read(json!({"details": "d", "organization_fields": {"a": null, "c": 3}}))
            .unwrap()
            .update(&mut org, 5)
            .unwrap();
        assert!(changed);
        assert_eq!(org.updated_at, 5);
        assert_eq!(org.notes.as_deref(), Some("n"));
        assert_eq!(org.details.as_deref(), Some("d"));
        assert_eq!(json!(org.organization_fields), json!({"b": 2, "c": 3}));
        assert!(
            !read(json!({"name": "A"}))
                .unwrap()
                .update(&mut org, 9)
                .unwrap()
        );
        assert_eq!(org.updated_at, 5);
        assert!(
            read(json!({"name": ""}))
                .unwrap()
                .update(&mut org, 9)
                .is_err()
        );
    }

    #[test]
    fn duplicate_name_reads_as_recorded() {
        let e = duplicate_name(" Lorem Ipsum ");
        assert_eq!(
            e.details(),
            json!({"name": [{"description": "Name: Lorem Ipsum has already been taken", "error": "DuplicateValue"}]})
        );
    }

    #[test]
    fn an_organization_keeps_its_own_name_and_external_id_but_takes_no_other() {
        let mut org = OrganizationRecord::new("Acme".into(), 1);
        org.id = 7;
        org.external_id = Some("x-1".into());
        assert!(check_unique(&org, None, None).is_ok());
        assert!(check_unique(&org, Some(7), Some(7)).is_ok());
        let name = check_unique(&org, Some(8), None).unwrap_err();
        assert_eq!(name.details()["name"][0]["error"], "DuplicateValue");
        let ext = check_unique(&org, None, Some(8)).unwrap_err();
        assert_eq!(ext.details()["external_id"][0]["error"], "DuplicateValue");
        org.external_id = None;
        assert!(check_unique(&org, None, Some(8)).is_ok());
    }

    #[test]
    fn create_or_update_targets_the_id_then_the_external_id_holder() {
        let by_id = read(json!({"id": 3, "external_id": "e"})).unwrap();
        assert_eq!(by_id.create_or_update_target(Some(9)), Some(3));
        let by_ext = read(json!({"external_id": "e", "name": "n"})).unwrap();
        assert_eq!(by_ext.create_or_update_target(Some(9)), Some(9));
        assert_eq!(by_ext.create_or_update_target(None), None);
    }
}
