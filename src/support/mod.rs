//! Small support modules with no knowledge of webhooks.

pub mod crypto;
pub mod glob;
pub mod json;
pub mod secret;
pub mod text;
pub mod time;
