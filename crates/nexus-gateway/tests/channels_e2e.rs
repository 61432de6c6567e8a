//! End-to-end channel tests: the channel conformance suite on every platform's fake.

#![allow(clippy::unwrap_used, unreachable_pub)]

mod channels;
mod common;

mod telegram {
    crate::channel_conformance!(nexus_testkit::telegram::FakeTelegram);
}

mod slack {
    crate::channel_conformance!(nexus_testkit::slack::FakeSlack);
}

mod discord {
    crate::channel_conformance!(nexus_testkit::discord::FakeDiscord);
}
