//! The Zendesk wire types and deskd's domain rules.
//!
//! Pure: no HTTP, no SQL, no async. The server gathers facts from the store, asks this crate to
//! decide, and hands the decision back to the store to write.

pub mod error;
pub mod fixture;
pub mod identity;
pub mod identity_plan;
pub mod input;
pub mod job;
pub mod membership;
pub mod merge;
pub mod organization;
pub mod organization_input;
pub mod role;
pub mod saved;
pub mod search;
pub mod tags;
pub mod text;
pub mod time;
pub mod upsert;
pub mod user;

pub use error::{FieldError, Rejection, ValidationErrors};
pub use role::Role;
pub use saved::Saved;
