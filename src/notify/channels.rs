//! Notification channels.
