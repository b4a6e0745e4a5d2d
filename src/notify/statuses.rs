//! Commit statuses.
