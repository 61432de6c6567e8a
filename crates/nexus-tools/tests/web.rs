#![allow(clippy::unwrap_used, unreachable_pub)]
//! placeholder
