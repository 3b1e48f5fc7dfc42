//! What a create-or-update did, for users and organizations alike: one type, so one place (the
//! HTTP layer's `respond::saved`) turns it into 201 or 200.

#[derive(Clone, Debug, PartialEq)]
pub enum Saved<T> {
    Created(T),
    Updated(T),
}

impl<T> Saved<T> {
    pub fn created(&self) -> bool {
        matches!(self, Saved::Created(_))
    }

    pub fn record(&self) -> &T {
        match self {
            Saved::Created(r) | Saved::Updated(r) => r,
        }
    }

    pub fn record_mut(&mut self) -> &mut T {
        match self {
            Saved::Created(r) | Saved::Updated(r) => r,
        }
    }

    pub fn into_record(self) -> T {
        match self {
            Saved::Created(r) | Saved::Updated(r) => r,
        }
    }

    /// Created when `created`, else updated.
    pub fn new(created: bool, record: T) -> Self {
        if created {
            Saved::Created(record)
        } else {
            Saved::Updated(record)
        }
    }
}
