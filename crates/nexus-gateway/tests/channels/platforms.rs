//! The platform fakes, set up for the suite.

use nexus_gateway::pb;
use nexus_testkit::slack::FakeSlack;
use nexus_testkit::telegram::FakeTelegram;

use super::Platform;

impl Platform for FakeTelegram {
    async fn start() -> Self {
        let fake = FakeTelegram::start().await;
        fake.add_group(-100_123, "team");
        fake
    }

    fn add_request(&self, agent: &str) -> pb::AddChannelRequest {
        pb::AddChannelRequest {
            kind: "telegram".into(),
            agent: agent.into(),
            token: self.token().to_owned(),
            api_base: self.base_url(),
            ..Default::default()
        }
    }

    fn limit(&self) -> usize {
        4096
    }

    fn group_id(&self) -> String {
        "-100123".into()
    }
}

impl Platform for FakeSlack {
    async fn start() -> Self {
        let fake = FakeSlack::start().await;
        fake.create_channel("C100");
        fake
    }

    fn add_request(&self, agent: &str) -> pb::AddChannelRequest {
        pb::AddChannelRequest {
            kind: "slack".into(),
            agent: agent.into(),
            bot_token: self.config().bot_token.clone(),
            app_token: self.config().app_token.clone(),
            api_base: self.base_url(),
            ..Default::default()
        }
    }

    fn limit(&self) -> usize {
        4000
    }

    fn new_command(&self) -> &'static str {
        "!new"
    }

    fn group_id(&self) -> String {
        "C100".into()
    }
}

impl Platform for nexus_testkit::discord::FakeDiscord {
    async fn start() -> Self {
        let fake = nexus_testkit::discord::FakeDiscord::start().await;
        fake.add_channel("900100");
        fake
    }

    fn add_request(&self, agent: &str) -> pb::AddChannelRequest {
        pb::AddChannelRequest {
            kind: "discord".into(),
            agent: agent.into(),
            token: self.token().to_owned(),
            api_base: self.api_base(),
            gateway_url: self.gateway_url(),
            ..Default::default()
        }
    }

    fn limit(&self) -> usize {
        2000
    }

    fn group_id(&self) -> String {
        "900100".into()
    }
}
