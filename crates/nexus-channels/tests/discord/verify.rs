//! Credentials and capabilities.

use super::*;

#[tokio::test]
async fn verify_names_the_bot_and_sends_bot_authorization_and_user_agent() {
    let fake = FakeDiscord::start_with(fake_config()).await;
    let (adapter, _) = adapter(&fake, fake.token(), true, limits());
    let me = adapter.verify().await.unwrap();
    assert_eq!(me.id, fake.bot_user_id());
    assert_eq!(me.name, "nexus-bot");
    let request = fake.requests().pop().unwrap();
    assert_eq!(
        request.authorization.as_deref(),
        Some(format!("Bot {}", fake.token()).as_str())
    );
    assert_eq!(
        request.user_agent.as_deref(),
        Some("DiscordBot (https://github.com/nexus, 0.1)")
    );
}

#[tokio::test]
async fn verify_with_a_wrong_token_fails_with_auth() {
    let fake = FakeDiscord::start_with(fake_config()).await;
    let (adapter, _) = adapter(&fake, "wrong", true, limits());
    let err = adapter.verify().await.unwrap_err();
    assert!(matches!(err, ChannelError::Auth { .. }), "{err:?}");
    assert!(!err.restartable());
    assert!(
        !err.to_string().contains("wrong"),
        "the token never shows: {err}"
    );
}

#[tokio::test]
async fn capabilities_are_discords() {
    let fake = FakeDiscord::start_with(fake_config()).await;
    let (adapter, _) = adapter(&fake, fake.token(), true, limits());
    let caps = adapter.capabilities();
    assert_eq!(caps.max_message_len, 2000);
    assert!(caps.edit && caps.threads && caps.typing && caps.media);
}
