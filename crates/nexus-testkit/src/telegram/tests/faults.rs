//! Every scripted fault.

use serde_json::{Value, json};

use super::super::{FakeTelegram, Fault};
use super::{call, client, dm, result, url};
use crate::chat::{ChatPlatform, UserSays};

#[tokio::test]
async fn scripted_errors_answer_with_the_real_envelope() {
    let fake = FakeTelegram::start().await;
    fake.fail_next("getMe", 1, Fault::RateLimited { retry_after: 3 });
    fake.fail_next("getme", 1, Fault::ServerError { status: 502 });
    fake.fail_next("getMe", 1, Fault::MigratedTo { chat_id: -100_777 });
    fake.fail_next(
        "getMe",
        1,
        Fault::Error {
            status: 403,
            description: "Forbidden: bot was blocked by the user".into(),
        },
    );
    let (s, b) = call(&fake, "getMe", json!({})).await;
    assert_eq!((s, b["parameters"]["retry_after"].as_i64()), (429, Some(3)));
    assert_eq!(b["description"], "Too Many Requests: retry after 3");
    assert_eq!(call(&fake, "getMe", json!({})).await.0, 502);
    let (s, b) = call(&fake, "getMe", json!({})).await;
    assert_eq!(
        (s, b["parameters"]["migrate_to_chat_id"].as_i64()),
        (400, Some(-100_777))
    );
    assert_eq!(call(&fake, "getMe", json!({})).await.0, 403);
    assert_eq!(
        call(&fake, "getMe", json!({})).await.0,
        200,
        "faults are used up"
    );
}

#[tokio::test]
async fn a_dropped_connection_malformed_and_oversized_bodies_can_be_scripted() {
    let fake = FakeTelegram::start().await;
    fake.fail_next("getUpdates", 1, Fault::DropConnection);
    fake.fail_next("getUpdates", 1, Fault::MalformedBody);
    fake.fail_next("getUpdates", 1, Fault::OversizedBody { bytes: 100_000 });
    let dropped = client()
        .post(url(&fake, "getUpdates"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await;
    assert!(dropped.is_err(), "the body never completes");
    let malformed = client()
        .post(url(&fake, "getUpdates"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(serde_json::from_slice::<Value>(&malformed).is_err());
    let big = client()
        .post(url(&fake, "getUpdates"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(big.len(), 100_000);
    assert_eq!(
        serde_json::from_slice::<Value>(&big).unwrap()["result"],
        json!([])
    );
}

#[tokio::test]
async fn rejected_entities_are_forced_only_on_calls_with_a_parse_mode() {
    let fake = FakeTelegram::start().await;
    let chat = dm(&fake).await;
    fake.fail_next("sendMessage", 1, Fault::RejectEntities);
    result(
        &fake,
        "sendMessage",
        json!({"chat_id": chat, "text": "plain"}),
    )
    .await;
    let (s, b) = call(
        &fake,
        "sendMessage",
        json!({"chat_id": chat, "text": "<b>x</b>", "parse_mode": "HTML"}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        b["description"]
            .as_str()
            .unwrap()
            .contains("can't parse entities")
    );
}

#[tokio::test]
async fn a_duplicated_update_is_delivered_twice_with_one_id() {
    let fake = FakeTelegram::start().await;
    fake.duplicate_next_update();
    fake.say(UserSays::direct("42", "twice")).await;
    let updates = result(&fake, "getUpdates", json!({})).await;
    assert_eq!(updates.as_array().unwrap().len(), 2);
    assert_eq!(updates[0]["update_id"], updates[1]["update_id"]);
}
