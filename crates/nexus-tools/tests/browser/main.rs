#![allow(clippy::unwrap_used, unreachable_pub)]
//! The `browser` tool against a real headless Chromium (`NEXUS_TEST_CHROMIUM`, provided by
//! `scripts/services/chromium.sh`), on pages served by the tests on loopback addresses. Each
//! test runs its own browser.

mod lifecycle;
mod pages;
mod sessions;
mod ssrf;
mod support;
