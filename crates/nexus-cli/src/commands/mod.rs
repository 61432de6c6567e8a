//! One module per command group.

pub(crate) mod admin;
pub(crate) mod channel;
pub(crate) mod chat;
pub(crate) mod doctor;
pub(crate) mod migrate;
pub(crate) mod models;
pub(crate) mod serve;
pub(crate) mod usage;
