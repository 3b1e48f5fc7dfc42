//! `GET /api/v2/openapi.json`: an OpenAPI 3.1 document of every endpoint deskd serves, built
//! here from one table of operations and the wire schemas. `tests/api/openapi.rs` fails when the
//! committed `openapi.json` at the repository root differs from what this builds, and checks that
//! every operation in the table answers.

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::respond::ok;

pub fn routes() -> Router<AppState> {
    // The `.json` suffix is stripped before routing, so this answers `/api/v2/openapi.json`.
    Router::new().route("/api/v2/openapi", get(serve))
}

async fn serve() -> Response {
    ok(&document())
}

/// What an operation takes in its body (the wrapper key and the schema inside it).
#[derive(Clone, Copy)]
enum Body {
    None,
    Wrapped(&'static str, &'static str),
    Raw(&'static str),
}

/// One operation: method, path (with `{id}` parameters), summary, body, success status and
/// response schema (a component name, or "" for no body).
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    summary: &'static str,
    body: Body,
    status: u16,
    response: &'static str,
    query: &'static [(&'static str, &'static str)],
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Body,
    status: u16,
    response: &'static str,
) -> Op {
    Op {
        method,
        path,
        summary,
        body,
        status,
        response,
        query: &[],
    }
}

const PAGING: &[(&str, &str)] = &[
    ("page", "integer"),
    ("per_page", "integer"),
    ("page[size]", "integer"),
    ("page[after]", "string"),
    ("page[before]", "string"),
];

/// Every operation deskd serves under `/api/v2`.
pub const OPERATIONS: &[Op] = &[
    op(
        "post",
        "/users/create_or_update",
        "Create or update a user",
        Body::Wrapped("user", "UserInput"),
        200,
        "UserResponse",
    ),
    op(
        "post",
        "/users/create_or_update_many",
        "Create or update up to 100 users (a job)",
        Body::Wrapped("users", "UserInputList"),
        200,
        "JobStatusResponse",
    ),
    op(
        "post",
        "/users/create_many",
        "Create up to 100 users (a job)",
        Body::Wrapped("users", "UserInputList"),
        200,
        "JobStatusResponse",
    ),
    op(
        "put",
        "/users/update_many",
        "Update up to 100 users, each naming its user (a job)",
        Body::Wrapped("users", "UserInputList"),
        200,
        "JobStatusResponse",
    ),
    Op {
        query: &[("ids", "string"), ("external_ids", "string")],
        ..op(
            "delete",
            "/users/destroy_many",
            "Soft-delete up to 100 users (a job)",
            Body::None,
            200,
            "JobStatusResponse",
        )
    },
    Op {
        query: &[
            ("role", "string"),
            ("external_id", "string"),
            ("page", "integer"),
            ("per_page", "integer"),
            ("page[size]", "integer"),
            ("page[after]", "string"),
            ("page[before]", "string"),
        ],
        ..op("get", "/users", "List users", Body::None, 200, "UserPage")
    },
    op(
        "post",
        "/users",
        "Create a user",
        Body::Wrapped("user", "UserInput"),
        201,
        "UserResponse",
    ),
    op(
        "get",
        "/users/me",
        "The caller",
        Body::None,
        200,
        "UserResponse",
    ),
    Op {
        query: &[
            ("ids", "string"),
            ("external_ids", "string"),
            ("include_deleted", "boolean"),
        ],
        ..op(
            "get",
            "/users/show_many",
            "Users by ids or external ids",
            Body::None,
            200,
            "UserPage",
        )
    },
    Op {
        query: &[
            ("query", "string"),
            ("external_id", "string"),
            ("page", "integer"),
            ("per_page", "integer"),
        ],
        ..op(
            "get",
            "/users/search",
            "Search users",
            Body::None,
            200,
            "UserPage",
        )
    },
    op(
        "get",
        "/users/count",
        "Count users",
        Body::None,
        200,
        "CountResponse",
    ),
    op(
        "get",
        "/users/{user_id}",
        "Show a user",
        Body::None,
        200,
        "UserResponse",
    ),
    op(
        "put",
        "/users/{user_id}",
        "Update a user",
        Body::Wrapped("user", "UserInput"),
        200,
        "UserResponse",
    ),
    op(
        "delete",
        "/users/{user_id}",
        "Soft-delete a user",
        Body::None,
        200,
        "UserResponse",
    ),
    Op {
        query: &[
            ("name", "string"),
            ("page", "integer"),
            ("per_page", "integer"),
        ],
        ..op(
            "get",
            "/users/autocomplete",
            "Users whose name starts with a prefix",
            Body::None,
            200,
            "UserPage",
        )
    },
    op(
        "get",
        "/users/{user_id}/related",
        "Counts of what relates to a user",
        Body::None,
        200,
        "UserRelatedResponse",
    ),
    op(
        "put",
        "/users/{user_id}/merge",
        "Merge an end user into another",
        Body::Wrapped("user", "MergeInput"),
        200,
        "UserResponse",
    ),
    op(
        "post",
        "/users/{user_id}/password",
        "Set a user's password (admins)",
        Body::Raw("PasswordInput"),
        200,
        "Empty",
    ),
    op(
        "get",
        "/users/{user_id}/password/requirements",
        "Password requirements",
        Body::None,
        200,
        "PasswordRequirements",
    ),
    op(
        "put",
        "/users/{user_id}/password",
        "Set a user's password",
        Body::Raw("PasswordInput"),
        200,
        "Empty",
    ),
    op(
        "get",
        "/users/{user_id}/tags",
        "A user's tags",
        Body::None,
        200,
        "TagsResponse",
    ),
    op(
        "put",
        "/users/{user_id}/tags",
        "Add tags to a user",
        Body::Raw("TagsInput"),
        200,
        "TagsResponse",
    ),
    op(
        "post",
        "/users/{user_id}/tags",
        "Set a user's tags",
        Body::Raw("TagsInput"),
        201,
        "TagsResponse",
    ),
    Op {
        query: &[("tags", "string")],
        ..op(
            "delete",
            "/users/{user_id}/tags",
            "Remove tags from a user (body or ?tags=)",
            Body::None,
            200,
            "TagsResponse",
        )
    },
    Op {
        query: PAGING,
        ..op(
            "get",
            "/deleted_users",
            "List deleted users",
            Body::None,
            200,
            "DeletedUserPage",
        )
    },
    op(
        "get",
        "/deleted_users/count",
        "Count deleted users",
        Body::None,
        200,
        "CountResponse",
    ),
    op(
        "get",
        "/deleted_users/{user_id}",
        "Show a deleted user",
        Body::None,
        200,
        "DeletedUserResponse",
    ),
    op(
        "delete",
        "/deleted_users/{user_id}",
        "Permanently delete a deleted user",
        Body::None,
        200,
        "DeletedUserResponse",
    ),
    op(
        "get",
        "/users/{user_id}/identities",
        "List a user's identities",
        Body::None,
        200,
        "IdentityList",
    ),
    op(
        "post",
        "/users/{user_id}/identities",
        "Add an identity",
        Body::Wrapped("identity", "IdentityInput"),
        201,
        "IdentityResponse",
    ),
    op(
        "get",
        "/users/{user_id}/identities/{identity_id}",
        "Show an identity",
        Body::None,
        200,
        "IdentityResponse",
    ),
    op(
        "put",
        "/users/{user_id}/identities/{identity_id}",
        "Update an identity",
        Body::Wrapped("identity", "IdentityInput"),
        200,
        "IdentityResponse",
    ),
    op(
        "delete",
        "/users/{user_id}/identities/{identity_id}",
        "Delete an identity",
        Body::None,
        204,
        "",
    ),
    op(
        "put",
        "/users/{user_id}/identities/{identity_id}/make_primary",
        "Make an identity primary",
        Body::None,
        200,
        "IdentityList",
    ),
    op(
        "put",
        "/users/{user_id}/identities/{identity_id}/verify",
        "Verify an identity",
        Body::None,
        200,
        "IdentityResponse",
    ),
    op(
        "put",
        "/users/{user_id}/identities/{identity_id}/request_verification",
        "Request verification",
        Body::None,
        200,
        "Null",
    ),
    Op {
        query: PAGING,
        ..op(
            "get",
            "/organizations",
            "List organizations",
            Body::None,
            200,
            "OrganizationPage",
        )
    },
    op(
        "post",
        "/organizations",
        "Create an organization",
        Body::Wrapped("organization", "OrganizationInput"),
        201,
        "OrganizationResponse",
    ),
    op(
        "post",
        "/organizations/create_or_update",
        "Create or update an organization",
        Body::Wrapped("organization", "OrganizationInput"),
        200,
        "OrganizationResponse",
    ),
    Op {
        query: &[("ids", "string"), ("external_ids", "string")],
        ..op(
            "get",
            "/organizations/show_many",
            "Organizations by ids or external ids",
            Body::None,
            200,
            "OrganizationPage",
        )
    },
    Op {
        query: &[("name", "string"), ("external_id", "string")],
        ..op(
            "get",
            "/organizations/search",
            "Find an organization by name or external id",
            Body::None,
            200,
            "OrganizationPage",
        )
    },
    op(
        "get",
        "/organizations/{organization_id}",
        "Show an organization",
        Body::None,
        200,
        "OrganizationResponse",
    ),
    op(
        "put",
        "/organizations/{organization_id}",
        "Update an organization",
        Body::Wrapped("organization", "OrganizationInput"),
        200,
        "OrganizationResponse",
    ),
    op(
        "delete",
        "/organizations/{organization_id}",
        "Delete an organization",
        Body::None,
        204,
        "",
    ),
    Op {
        query: PAGING,
        ..op(
            "get",
            "/organizations/{organization_id}/users",
            "An organization's users",
            Body::None,
            200,
            "UserPage",
        )
    },
    op(
        "post",
        "/organizations/create_many",
        "Create up to 100 organizations (a job)",
        Body::Wrapped("organizations", "OrganizationInputList"),
        200,
        "JobStatusResponse",
    ),
    Op {
        query: &[("ids", "string"), ("external_ids", "string")],
        ..op(
            "put",
            "/organizations/update_many",
            "Update up to 100 organizations: one `organization` for `ids=`, or `organizations` naming theirs (a job)",
            Body::Raw("OrganizationUpdateMany"),
            200,
            "JobStatusResponse",
        )
    },
    Op {
        query: &[("ids", "string"), ("external_ids", "string")],
        ..op(
            "delete",
            "/organizations/destroy_many",
            "Delete up to 100 organizations (a job)",
            Body::None,
            200,
            "JobStatusResponse",
        )
    },
    Op {
        query: &[
            ("name", "string"),
            ("page", "integer"),
            ("per_page", "integer"),
        ],
        ..op(
            "get",
            "/organizations/autocomplete",
            "Organizations whose name starts with `name`",
            Body::None,
            200,
            "OrganizationPage",
        )
    },
    op(
        "get",
        "/organizations/count",
        "Count organizations",
        Body::None,
        200,
        "CountResponse",
    ),
    op(
        "get",
        "/organizations/{organization_id}/related",
        "An organization's related counts",
        Body::None,
        200,
        "OrganizationRelatedResponse",
    ),
    Op {
        query: PAGING,
        ..op(
            "get",
            "/organizations/{organization_id}/organization_memberships",
            "An organization's memberships",
            Body::None,
            200,
            "MembershipPage",
        )
    },
    Op {
        query: PAGING,
        ..op(
            "get",
            "/organization_memberships",
            "List memberships (an end user's own)",
            Body::None,
            200,
            "MembershipPage",
        )
    },
    op(
        "post",
        "/organization_memberships",
        "Add a user to an organization",
        Body::Wrapped("organization_membership", "MembershipInput"),
        201,
        "MembershipResponse",
    ),
    op(
        "post",
        "/organization_memberships/create_many",
        "Create up to 100 memberships (a job)",
        Body::Wrapped("organization_memberships", "MembershipInputList"),
        200,
        "JobStatusResponse",
    ),
    Op {
        query: &[("ids", "string")],
        ..op(
            "delete",
            "/organization_memberships/destroy_many",
            "Delete up to 100 memberships (a job)",
            Body::None,
            200,
            "JobStatusResponse",
        )
    },
    op(
        "get",
        "/organization_memberships/{membership_id}",
        "Show a membership",
        Body::None,
        200,
        "MembershipResponse",
    ),
    op(
        "delete",
        "/organization_memberships/{membership_id}",
        "Delete a membership",
        Body::None,
        204,
        "",
    ),
    Op {
        query: PAGING,
        ..op(
            "get",
            "/users/{user_id}/organization_memberships",
            "A user's memberships, the default first",
            Body::None,
            200,
            "MembershipPage",
        )
    },
    op(
        "post",
        "/users/{user_id}/organization_memberships",
        "Add the user to an organization",
        Body::Wrapped("organization_membership", "UserMembershipInput"),
        201,
        "MembershipResponse",
    ),
    op(
        "get",
        "/users/{user_id}/organization_memberships/{membership_id}",
        "Show one of a user's memberships",
        Body::None,
        200,
        "MembershipResponse",
    ),
    op(
        "delete",
        "/users/{user_id}/organization_memberships/{membership_id}",
        "Delete one of a user's memberships",
        Body::None,
        204,
        "",
    ),
    op(
        "put",
        "/users/{user_id}/organization_memberships/{membership_id}/make_default",
        "Make a membership the user's default",
        Body::None,
        200,
        "MembershipList",
    ),
    Op {
        query: &[("page", "integer"), ("per_page", "integer")],
        ..op(
            "get",
            "/users/{user_id}/organizations",
            "The organizations a user belongs to",
            Body::None,
            200,
            "OrganizationPage",
        )
    },
    op(
        "put",
        "/users/{user_id}/organizations/{organization_id}/make_default",
        "Make an organization the user's default",
        Body::None,
        200,
        "MembershipList",
    ),
    op(
        "delete",
        "/users/{user_id}/organizations/{organization_id}",
        "Remove a user from an organization",
        Body::None,
        204,
        "",
    ),
    op(
        "get",
        "/organizations/{organization_id}/tags",
        "An organization's tags",
        Body::None,
        200,
        "TagsResponse",
    ),
    op(
        "put",
        "/organizations/{organization_id}/tags",
        "Add tags to an organization",
        Body::Raw("TagsInput"),
        200,
        "TagsResponse",
    ),
    op(
        "post",
        "/organizations/{organization_id}/tags",
        "Set an organization's tags",
        Body::Raw("TagsInput"),
        201,
        "TagsResponse",
    ),
    Op {
        query: &[("tags", "string")],
        ..op(
            "delete",
            "/organizations/{organization_id}/tags",
            "Remove tags from an organization (body or ?tags=)",
            Body::None,
            200,
            "TagsResponse",
        )
    },
    Op {
        query: &[("page[size]", "integer"), ("page[after]", "string")],
        ..op(
            "get",
            "/job_statuses",
            "List job statuses",
            Body::None,
            200,
            "JobStatusPage",
        )
    },
    Op {
        query: &[("ids", "string")],
        ..op(
            "get",
            "/job_statuses/show_many",
            "Job statuses by ids",
            Body::None,
            200,
            "JobStatusPage",
        )
    },
    op(
        "get",
        "/job_statuses/{job_id}",
        "Show a job status",
        Body::None,
        200,
        "JobStatusResponse",
    ),
    op(
        "get",
        "/job_statuses/{job_id}/events",
        "deskd extension: the job's progress as Server-Sent Events (`progress` on each change, then `completed` or `failed` with the results; each event's data is a JobStatusResponse)",
        Body::None,
        200,
        EVENT_STREAM,
    ),
    Op {
        query: &[
            ("start_time", "integer"),
            ("cursor", "string"),
            ("per_page", "integer"),
            ("include", "string"),
        ],
        ..op(
            "get",
            "/incremental/users/cursor",
            "Users changed since a time",
            Body::None,
            200,
            "IncrementalUsers",
        )
    },
    Op {
        query: &[
            ("start_time", "integer"),
            ("per_page", "integer"),
            ("include", "string"),
        ],
        ..op(
            "get",
            "/incremental/users",
            "Users changed since a time (time-based; start_time at least a minute ago)",
            Body::None,
            200,
            "TimeBasedUsers",
        )
    },
    Op {
        query: &[("start_time", "integer"), ("per_page", "integer")],
        ..op(
            "get",
            "/incremental/organizations",
            "Organizations changed since a time (time-based; start_time at least a minute ago)",
            Body::None,
            200,
            "TimeBasedOrganizations",
        )
    },
    op(
        "get",
        "/api_tokens",
        "List API tokens",
        Body::None,
        200,
        "ApiTokenList",
    ),
    op(
        "post",
        "/api_tokens",
        "Create an API token (shown once)",
        Body::Raw("ApiTokenRequest"),
        201,
        "ApiTokenResponse",
    ),
    op(
        "get",
        "/api_tokens/{token_id}",
        "Show an API token",
        Body::None,
        200,
        "ApiTokenResponse",
    ),
    op(
        "delete",
        "/api_tokens/{token_id}",
        "Revoke an API token",
        Body::None,
        204,
        "",
    ),
    op(
        "post",
        "/oauth/tokens",
        "Issue a bearer token for a user",
        Body::Wrapped("token", "OauthTokenInput"),
        201,
        "OauthTokenResponse",
    ),
    op(
        "delete",
        "/oauth/tokens/{token_id}",
        "Revoke a bearer token",
        Body::None,
        204,
        "",
    ),
    op(
        "get",
        "/account/settings",
        "Account settings",
        Body::None,
        200,
        "SettingsResponse",
    ),
    op(
        "put",
        "/account/settings",
        "Change account settings",
        Body::Wrapped("settings", "SettingsInput"),
        200,
        "SettingsResponse",
    ),
    Op {
        query: PAGING,
        ..op(
            "get",
            "/user_fields",
            "List user fields, in display order",
            Body::None,
            200,
            "UserFieldPage",
        )
    },
    op(
        "post",
        "/user_fields",
        "Create a user field",
        Body::Wrapped("user_field", "CustomFieldInput"),
        201,
        "UserFieldResponse",
    ),
    op(
        "put",
        "/user_fields/reorder",
        "Reorder user fields (empty body)",
        Body::Raw("UserFieldReorder"),
        200,
        "",
    ),
    op(
        "get",
        "/user_fields/{field_id}",
        "Show a user field (by id or key)",
        Body::None,
        200,
        "UserFieldResponse",
    ),
    op(
        "put",
        "/user_fields/{field_id}",
        "Update a user field (type and key cannot change)",
        Body::Wrapped("user_field", "CustomFieldInput"),
        200,
        "UserFieldResponse",
    ),
    op(
        "delete",
        "/user_fields/{field_id}",
        "Delete a user field and its values",
        Body::None,
        204,
        "",
    ),
    Op {
        query: PAGING,
        ..op(
            "get",
            "/organization_fields",
            "List organization fields, in display order",
            Body::None,
            200,
            "OrganizationFieldPage",
        )
    },
    op(
        "post",
        "/organization_fields",
        "Create a organization field",
        Body::Wrapped("organization_field", "CustomFieldInput"),
        201,
        "OrganizationFieldResponse",
    ),
    op(
        "put",
        "/organization_fields/reorder",
        "Reorder organization fields (empty body)",
        Body::Raw("OrganizationFieldReorder"),
        200,
        "",
    ),
    op(
        "get",
        "/organization_fields/{field_id}",
        "Show a organization field (by id or key)",
        Body::None,
        200,
        "OrganizationFieldResponse",
    ),
    op(
        "put",
        "/organization_fields/{field_id}",
        "Update a organization field (type and key cannot change)",
        Body::Wrapped("organization_field", "CustomFieldInput"),
        200,
        "OrganizationFieldResponse",
    ),
    op(
        "delete",
        "/organization_fields/{field_id}",
        "Delete a organization field and its values",
        Body::None,
        204,
        "",
    ),
    Op {
        query: PAGING,
        ..op(
            "get",
            "/user_fields/{field_id}/options",
            "A dropdown or multiselect user field's options",
            Body::None,
            200,
            "CustomFieldOptionPage",
        )
    },
    op(
        "post",
        "/user_fields/{field_id}/options",
        "Create (201) or update (200, by id) a user field option",
        Body::Wrapped("custom_field_option", "CustomFieldOptionInput"),
        201,
        "CustomFieldOptionResponse",
    ),
    op(
        "get",
        "/user_fields/{field_id}/options/{option_id}",
        "Show a user field option",
        Body::None,
        200,
        "CustomFieldOptionResponse",
    ),
    op(
        "delete",
        "/user_fields/{field_id}/options/{option_id}",
        "Delete a user field option",
        Body::None,
        204,
        "",
    ),
    Op {
        query: SEARCH,
        ..op(
            "get",
            "/search",
            "Search users and organizations (result_type on each result)",
            Body::None,
            200,
            "SearchPage",
        )
    },
    Op {
        query: &[("query", "string")],
        ..op(
            "get",
            "/search/count",
            "Count search results",
            Body::None,
            200,
            "SearchCount",
        )
    },
    Op {
        query: &[
            ("query", "string"),
            ("filter[type]", "string"),
            ("page[size]", "integer"),
            ("page[after]", "string"),
        ],
        ..op(
            "get",
            "/search/export",
            "Export search results of one type (cursor pages)",
            Body::None,
            200,
            "SearchExport",
        )
    },
];

const SEARCH: &[(&str, &str)] = &[
    ("query", "string"),
    ("sort_by", "string"),
    ("sort_order", "string"),
    ("page", "integer"),
    ("per_page", "integer"),
];

fn s(t: &str) -> Value {
    json!({ "type": t })
}

fn n(t: &str) -> Value {
    json!({ "type": [t, "null"] })
}

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn obj(props: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": props, "required": required })
}

fn schemas() -> Value {
    let user = obj(
        json!({
            "id": s("integer"), "url": s("string"), "name": s("string"), "email": n("string"),
            "created_at": s("string"), "updated_at": s("string"), "time_zone": s("string"), "iana_time_zone": s("string"),
            "phone": n("string"), "shared_phone_number": n("boolean"), "photo": {"type": ["object", "null"]}, "remote_photo_url": n("string"),
            "locale_id": s("integer"), "locale": s("string"), "organization_id": n("integer"),
            "role": {"type": "string", "enum": ["end-user", "agent", "admin"]}, "verified": s("boolean"), "authenticity_token": s("string"),
            "external_id": n("string"), "tags": {"type": "array", "items": s("string")}, "alias": n("string"), "active": s("boolean"),
            "shared": s("boolean"), "shared_agent": s("boolean"), "last_login_at": n("string"), "two_factor_auth_enabled": s("boolean"),
            "signature": n("string"), "details": n("string"), "notes": n("string"), "role_type": n("integer"), "custom_role_id": n("integer"),
            "moderator": s("boolean"), "ticket_restriction": n("string"), "only_private_comments": s("boolean"), "restricted_agent": s("boolean"),
            "suspended": s("boolean"), "default_group_id": n("integer"), "report_csv": s("boolean"), "chat_only": s("boolean"), "user_fields": s("object"),
        }),
        &[
            "id",
            "url",
            "name",
            "email",
            "role",
            "active",
            "created_at",
            "updated_at",
        ],
    );
    // The anonymous user of /users/me has nulls where a stored user has values.
    // /users/me answers the anonymous user to anonymous callers and the reduced object to end users.
    let me_user = json!({"anyOf": [
        r("User"),
        {"type": "object", "properties": {"id": s("integer"), "name": s("string"), "role": s("string")}, "required": ["id", "name", "role"]},
        {"type": "object", "properties": {"id": {"type": "null"}}, "required": ["id"]},
    ]});
    // Input schemas say what deskd accepts: text fields take any scalar (numbers and booleans are
    // read as text, `null` clears), integers take numbers or numeric strings, unknown keys are
    // ignored. What the schema allows may still fail the rules (a taken email is a 422).
    let scalar = json!({"type": ["string", "number", "boolean", "null"], "maxLength": 255});
    let long_text = json!({"type": ["string", "number", "boolean", "null"], "maxLength": 65536});
    let integer = json!({"type": ["integer", "string", "null"], "pattern": "^[0-9]*$"});
    let list = json!({"type": ["array", "string", "null"], "items": {"type": ["string", "number"], "maxLength": 255}});
    let flag = json!({"type": ["boolean", "integer", "string", "null"], "enum": [true, false, 0, 1, "true", "false", "1", "0", "", null]});
    let user_input = json!({
        "type": "object",
        "properties": {
            "id": {"description": "names the user to update (create_or_update); ignored by POST /users"}, "name": {"type": ["string", "number", "boolean"], "minLength": 1, "maxLength": 255, "pattern": "\\S"},
            "email": {"type": ["string", "null"], "maxLength": 255}, "external_id": scalar, "role": {"type": ["string", "null"], "enum": ["end-user", "agent", "admin", "", null]},
            "custom_role_id": integer, "organization_id": integer, "default_group_id": integer, "locale_id": integer,
            "organization": {"type": ["object", "null"], "properties": {"name": {"type": ["string", "null"], "maxLength": 255}}},
            "identities": {"type": ["array", "null"], "items": r("IdentityInput")},
            "verified": flag, "skip_verify_email": flag,
            "tags": list, "user_fields": {"type": ["object", "null"]},
            "phone": scalar, "alias": scalar, "details": long_text, "notes": long_text, "signature": long_text, "time_zone": scalar, "locale": {"type": ["string", "number", "boolean", "null"], "maxLength": 16},
            "ticket_restriction": {"type": ["string", "null"], "enum": ["organization", "groups", "assigned", "requested", null]},
            "moderator": flag, "only_private_comments": flag, "suspended": flag,
        },
    });
    let identity = obj(
        json!({"url": s("string"), "id": s("integer"), "user_id": s("integer"), "type": s("string"), "value": s("string"),
               "verified": s("boolean"), "primary": s("boolean"), "created_at": s("string"), "updated_at": s("string"),
               "undeliverable_count": s("integer"), "deliverable_state": s("string")}),
        &["id", "user_id", "type", "value", "primary"],
    );
    let organization = obj(
        json!({"url": s("string"), "id": s("integer"), "name": s("string"), "shared_tickets": s("boolean"), "shared_comments": s("boolean"),
               "external_id": n("string"), "created_at": s("string"), "updated_at": s("string"), "domain_names": {"type": "array", "items": s("string")},
               "details": n("string"), "notes": n("string"), "group_id": n("integer"), "tags": {"type": "array", "items": s("string")},
               "organization_fields": s("object")}),
        &["id", "name"],
    );
    let job = obj(
        json!({"id": s("string"), "url": s("string"), "total": s("integer"), "progress": n("integer"), "status": s("string"),
               "message": n("string"), "results": {"type": ["array", "null"], "items": s("object")}, "job_type": s("string")}),
        &[
            "id", "url", "total", "progress", "status", "message", "results",
        ],
    );
    let offset = |item: &str, key: &str| {
        json!({"type": "object", "properties": {
            key: {"type": "array", "items": r(item)}, "next_page": n("string"), "previous_page": n("string"), "count": s("integer"),
            "meta": s("object"), "links": s("object")}, "required": [key]})
    };
    let wrap = |key: &str, item: Value| json!({"type": "object", "properties": {key: item}, "required": [key]});
    // Organizations in bulk and memberships.
    let more_orgs = json!({
        "OrganizationInputList": {"type": "array", "items": {}, "minItems": 1, "maxItems": 100},
        "OrganizationUpdateMany": {"type": "object", "properties": {"organization": r("OrganizationInput"), "organizations": r("OrganizationInputList")}},
        "OrganizationRelatedResponse": wrap("organization_related", obj(json!({"tickets_count": s("integer"), "users_count": s("integer")}), &["tickets_count", "users_count"])),
        "Membership": obj(json!({"id": s("integer"), "url": s("string"), "user_id": s("integer"), "organization_id": s("integer"),
                                 "default": {"type": ["boolean", "null"]}, "organization_name": s("string"), "view_tickets": s("boolean"),
                                 "created_at": s("string"), "updated_at": s("string")}), &["id", "user_id", "organization_id", "default"]),
        "MembershipInput": {"type": "object", "properties": {"user_id": integer, "organization_id": integer, "default": flag}},
        "UserMembershipInput": {"type": "object", "description": "the path names the user; a user_id here is ignored", "properties": {"user_id": {}, "organization_id": integer, "default": flag}},
        "MembershipInputList": {"type": "array", "items": {}, "minItems": 1, "maxItems": 100},
        "MembershipResponse": wrap("organization_membership", r("Membership")),
        "MembershipList": wrap("organization_memberships", json!({"type": "array", "items": r("Membership")})),
        "MembershipPage": offset("Membership", "organization_memberships"),
    });
    // The schemas of the users domain beyond the core (one `json!` per group: the macro's
    // recursion has a limit).
    let more = json!({
        "TagsInput": {"type": "object", "properties": {"tags": list}, "required": ["tags"]},
        "TagsResponse": wrap("tags", json!({"type": "array", "items": s("string")})),
        "UserRelatedResponse": wrap("user_related", obj(json!({"assigned_tickets": s("integer"), "ccd_tickets": s("integer"),
                                                               "organization_subscriptions": s("integer"), "requested_tickets": s("integer")}),
                                                        &["assigned_tickets", "ccd_tickets", "organization_subscriptions", "requested_tickets"])),
        "MergeInput": {"type": "object", "properties": {"id": {"type": ["integer", "string"], "minimum": 1, "pattern": "^[0-9]+$"}}, "required": ["id"]},
        "PasswordRequirements": wrap("requirements", json!({"type": "array", "items": s("string")})),
        "TimeBasedUsers": obj(json!({"users": {"type": "array", "items": r("User")}, "count": s("integer"), "end_time": s("integer"),
                                     "next_page": n("string"), "end_of_stream": s("boolean"), "identities": {"type": "array", "items": r("Identity")}}),
                              &["users", "count", "end_time", "next_page", "end_of_stream"]),
        "TimeBasedOrganizations": obj(json!({"organizations": {"type": "array", "items": r("Organization")}, "count": s("integer"), "end_time": s("integer"),
                                             "next_page": n("string"), "end_of_stream": s("boolean")}),
                                      &["organizations", "count", "end_time", "next_page", "end_of_stream"]),
    });
    let mut all = json!({
        "User": user,
        "UserInput": user_input,
        // Items are checked one by one by the job (each failure is a result entry), so the
        // submission takes any items.
        "UserInputList": {"type": "array", "items": {}, "minItems": 1, "maxItems": 100},
        "UserResponse": wrap("user", me_user),
        "UserPage": offset("User", "users"),
        "DeletedUser": obj(json!({"id": s("integer"), "url": s("string"), "name": s("string"), "active": s("boolean")}), &["id", "name"]),
        "DeletedUserResponse": wrap("deleted_user", r("DeletedUser")),
        "DeletedUserPage": offset("DeletedUser", "deleted_users"),
        "CountResponse": wrap("count", obj(json!({"value": s("integer"), "refreshed_at": s("string")}), &["value"])),
        "PasswordInput": {"type": "object", "properties": {"password": {"type": "string", "minLength": 8}, "previous_password": {}}, "required": ["password"]},
        "Identity": identity,
        "IdentityInput": {"type": "object", "properties": {"type": {"type": "string", "enum": ["email", "twitter", "facebook", "google", "phone_number", "agent_forwarding", "any_channel", "foreign", "sdk", "messaging"]}, "value": {"type": ["string", "number"], "minLength": 1, "maxLength": 255}, "verified": {"type": ["boolean", "null"]}, "primary": {"type": ["boolean", "null"]}}},
        "IdentityResponse": wrap("identity", r("Identity")),
        "IdentityList": wrap("identities", json!({"type": "array", "items": r("Identity")})),
        "Organization": organization,
        "OrganizationInput": {"type": "object", "properties": {"id": integer, "name": {"type": ["string", "number", "boolean", "null"], "maxLength": 255}, "external_id": scalar, "notes": long_text, "details": long_text, "group_id": integer, "shared_tickets": flag, "shared_comments": flag, "domain_names": list, "tags": list, "organization_fields": {"type": ["object", "null"]}}},
        "OrganizationResponse": wrap("organization", r("Organization")),
        "OrganizationPage": offset("Organization", "organizations"),
        "JobStatus": job,
        "JobStatusResponse": wrap("job_status", r("JobStatus")),
        "JobStatusPage": offset("JobStatus", "job_statuses"),
        "IncrementalUsers": obj(json!({"users": {"type": "array", "items": r("User")}, "after_url": n("string"), "after_cursor": n("string"),
                                       "before_url": n("string"), "before_cursor": n("string"), "end_of_stream": s("boolean")}), &["users", "end_of_stream"]),
        "ApiToken": obj(json!({"url": s("string"), "id": s("integer"), "description": n("string"), "active": s("boolean"), "token": s("string"),
                               "created_at": s("string"), "updated_at": s("string")}), &["id"]),
        "ApiTokenRequest": {"type": "object", "properties": {"api_token": r("ApiTokenInput")}},
        "ApiTokenInput": {"type": ["object", "null"], "properties": {"description": {"type": ["string", "null"], "maxLength": 255}}},
        "ApiTokenResponse": wrap("api_token", r("ApiToken")),
        "ApiTokenList": wrap("api_tokens", json!({"type": "array", "items": r("ApiToken")})),
        "OauthTokenInput": {"type": "object", "properties": {"user_id": integer, "scopes": {"type": ["array", "null"], "items": {"type": "string", "enum": ["read", "write", "users:read", "users:write"]}, "minItems": 1}}},
        "OauthTokenResponse": wrap("token", obj(json!({"id": s("integer"), "user_id": s("integer"), "full_token": s("string"), "scopes": {"type": "array", "items": s("string")}}), &["id", "full_token"])),
        "SettingsInput": {"type": "object", "properties": {"deskd": {"type": "object", "properties": {"bulk_user_import": s("boolean")}}}},
        "SettingsResponse": wrap("settings", s("object")),
        "Empty": s("object"),
        "Null": {"type": "null"},
        "Error": {"type": "object", "description": "Zendesk's error body", "properties": {"error": {"type": ["string", "object"]}, "description": s("string"), "details": s("object")}, "required": ["error"]},
    });
    // Custom fields and search.
    let option = obj(
        json!({"url": s("string"), "id": s("integer"), "name": s("string"), "raw_name": s("string"), "value": s("string"), "position": s("integer")}),
        &["id", "name", "value"],
    );
    let field = obj(
        json!({"url": s("string"), "id": s("integer"), "type": {"type": "string", "enum": ["text", "textarea", "checkbox", "date", "integer", "decimal", "regexp", "dropdown", "multiselect", "lookup"]},
               "key": s("string"), "title": s("string"), "description": s("string"), "raw_title": s("string"), "raw_description": s("string"),
               "position": s("integer"), "active": s("boolean"), "system": s("boolean"), "regexp_for_validation": n("string"),
               "created_at": s("string"), "updated_at": s("string"), "tag": n("string"), "custom_field_options": {"type": "array", "items": r("CustomFieldOption")},
               "relationship_target_type": n("string"), "relationship_filter": s("object")}),
        &["id", "type", "key", "title", "position", "active"],
    );
    let option_input = json!({"type": "object", "properties": {"id": integer, "name": scalar, "raw_name": scalar, "value": scalar}});
    let ids = json!({"type": "array", "items": {"type": ["integer", "string"], "minimum": 1, "pattern": "^[0-9]+$"}});
    let fields = json!({
        "CustomFieldOption": option,
        "CustomField": field,
        "CustomFieldInput": {"type": "object", "description": "type defaults to text; key and title are required on create; type and key cannot change", "properties": {
            "type": {"type": ["string", "null"], "enum": ["text", "textarea", "checkbox", "date", "integer", "decimal", "regexp", "dropdown", "tagger", "multiselect", "lookup", "", null]},
            "key": scalar, "title": scalar, "raw_title": scalar, "description": long_text, "raw_description": long_text,
            "position": integer, "active": flag, "regexp_for_validation": long_text, "tag": scalar,
            "custom_field_options": {"type": ["array", "null"], "items": option_input.clone()},
            "relationship_target_type": scalar, "relationship_filter": {"type": ["object", "null"]}}},
        "CustomFieldOptionInput": option_input,
        "CustomFieldOptionResponse": wrap("custom_field_option", r("CustomFieldOption")),
        "CustomFieldOptionPage": offset("CustomFieldOption", "custom_field_options"),
        "UserFieldResponse": wrap("user_field", r("CustomField")),
        "UserFieldPage": offset("CustomField", "user_fields"),
        "UserFieldReorder": {"type": "object", "properties": {"user_field_ids": ids.clone()}, "required": ["user_field_ids"]},
        "OrganizationFieldResponse": wrap("organization_field", r("CustomField")),
        "OrganizationFieldPage": offset("CustomField", "organization_fields"),
        "OrganizationFieldReorder": {"type": "object", "properties": {"organization_field_ids": ids}, "required": ["organization_field_ids"]},
        "SearchResult": {"type": "object", "properties": {"result_type": {"type": "string", "enum": ["user", "organization"]}, "id": s("integer")}, "required": ["result_type", "id"]},
        "SearchPage": obj(json!({"results": {"type": "array", "items": r("SearchResult")}, "facets": {"type": ["object", "null"]},
                                 "next_page": n("string"), "previous_page": n("string"), "count": s("integer")}), &["results", "count"]),
        "SearchCount": obj(json!({"count": s("integer")}), &["count"]),
        "SearchExport": obj(json!({"results": {"type": "array", "items": r("SearchResult")}, "facets": {"type": ["object", "null"]},
                                   "meta": obj(json!({"has_more": s("boolean"), "after_cursor": n("string"), "before_cursor": n("string")}), &["has_more"]),
                                   "links": obj(json!({"prev": n("string"), "next": n("string")}), &[])}), &["results", "meta", "links"]),
    });
    if let (Some(all), Value::Object(more), Value::Object(more_orgs), Value::Object(fields)) =
        (all.as_object_mut(), more, more_orgs, fields)
    {
        all.extend(more);
        all.extend(more_orgs);
        all.extend(fields);
    }
    all
}

/// The response "schema" of an operation that answers with a `text/event-stream`.
const EVENT_STREAM: &str = "text/event-stream";

/// The reads whose statements are bounded by the read timeout (`Config::read_timeout`).
const PAGED_READS: &[&str] = &[
    "/users",
    "/users/search",
    "/users/autocomplete",
    "/deleted_users",
];

/// Statuses every operation may answer besides its success: client mistakes and limits.
const ERRORS: &[(u16, &str)] = &[
    (400, "Malformed request"),
    (401, "Couldn't authenticate you"),
    (
        403,
        "Not allowed for this role, or outside the bearer token's scopes",
    ),
    (404, "No such record"),
    (405, "Method not allowed"),
    (
        408,
        "The request took longer than the request timeout to arrive or to answer",
    ),
    (413, "Body too large"),
    (422, "Record invalid"),
];

fn operation(op: &Op) -> Value {
    let mut params: Vec<Value> = op
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = if name == "job_id" {
                json!({"type": "string"})
            } else {
                json!({"type": "integer", "minimum": 1})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    params.extend(op.query.iter().map(|(name, t)| json!({"name": name, "in": "query", "required": false, "schema": query_schema(op.path, name, t)})));
    let mut responses = Map::new();
    let success = if op.response.is_empty() {
        json!({"description": "Done"})
    } else if op.response == EVENT_STREAM {
        // OpenAPI 3.1 has a sequential media type's `schema` describe each event.
        json!({"description": "An event stream; each event's data is a JobStatusResponse as JSON", "content": {EVENT_STREAM: {"schema": {
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"type": "string", "enum": ["progress", "completed", "failed", "gone", "error"]},
                "data": {"type": "string", "description": "JSON: a JobStatusResponse (without results until the last event)"},
                "id": {"type": "string"},
            },
        }}}})
    } else {
        json!({"description": "Success", "content": {"application/json": {"schema": r(op.response)}}})
    };
    responses.insert(op.status.to_string(), success);
    if op.path.ends_with("/options") && op.method == "post" {
        // An option given with the id of an existing one is updated.
        responses.insert("200".into(), json!({"description": "Updated", "content": {"application/json": {"schema": r(op.response)}}}));
    }
    if op.path.ends_with("create_or_update") {
        responses.insert("201".into(), json!({"description": "Created", "content": {"application/json": {"schema": r(op.response)}}}));
    }
    for (status, description) in ERRORS {
        responses.insert(status.to_string(), json!({"description": description, "content": {"application/json": {"schema": r("Error")}}}));
    }
    responses.insert(
        "429".into(),
        json!({"description": "Rate limited", "headers": {"Retry-After": {"schema": {"type": "integer"}}}, "content": {"text/plain": {"schema": {"type": "string"}}}}),
    );
    // Any body that is not JSON is refused, on every method that may carry one.
    if op.method != "get" {
        responses.insert("415".into(), json!({"description": "The body is not application/json", "content": {"application/json": {"schema": r("Error")}}}));
    }
    if op.method == "get" && PAGED_READS.contains(&op.path) {
        responses.insert("503".into(), json!({"description": "The read ran past the read timeout", "content": {"application/json": {"schema": r("Error")}}}));
    }
    let mut o = json!({"summary": op.summary, "operationId": operation_id(op), "parameters": params, "responses": responses});
    if op.path == "/users/me" {
        // Anonymous callers get the anonymous user.
        o["security"] = json!([{}, {"basic": []}, {"bearer": []}]);
    }
    match op.body {
        Body::None => {}
        Body::Wrapped(key, schema) => {
            o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {key: r(schema)}, "required": [key]}}}});
        }
        Body::Raw(schema) => {
            o["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": r(schema)}}});
        }
    }
    o
}

/// The accepted values of a query parameter, as the handlers check them.
fn query_schema(path: &str, name: &str, t: &str) -> Value {
    match name {
        // The search export's pages are larger.
        "page[size]" if path == "/search/export" => {
            json!({"type": "integer", "minimum": 1, "maximum": 1000})
        }
        // Offset parameters are read leniently (nonsense is the default; per_page is capped).
        "page" | "per_page" => json!({"description": "read leniently, as Rails' to_i"}),
        "page[size]" => json!({"type": "integer", "minimum": 1, "maximum": 100}),
        "start_time" => json!({"type": "integer", "minimum": 0}),
        "ids" | "external_ids" => json!({"type": "string", "minLength": 1}),
        // Anything but `true` means false.
        "include_deleted" => json!({"type": "string"}),
        "query" => json!({"type": "string", "minLength": 1}),
        "filter[type]" => {
            json!({"type": "string", "enum": ["user", "organization", "ticket", "group"]})
        }
        // Unknown sorts mean relevance; anything but asc means desc.
        "sort_by" | "sort_order" => json!({"type": "string"}),
        _ => json!({"type": t}),
    }
}

fn operation_id(op: &Op) -> String {
    let words: Vec<String> = op
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_matches(['{', '}']).replace('_', " "))
        .collect();
    format!("{} {}", op.method, words.join(" ")).replace(' ', "_")
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let entry = paths
            .entry(format!("/api/v2{}", op.path))
            .or_insert_with(|| json!({}));
        entry[op.method] = operation(op);
    }
    paths.extend(crate::testmode::openapi::paths());
    let mut schemas = schemas();
    if let Value::Object(m) = &mut schemas {
        m.extend(crate::testmode::openapi::schemas());
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "deskd: the Zendesk Support Users API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every path also answers with a `.json` suffix. Authentication: Basic `email/token:TOKEN`, Basic `email:password`, or `Bearer TOKEN`."
        },
        "security": [{"basic": []}, {"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}, "bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
    })
}
