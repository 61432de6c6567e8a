//! REST rate limits: buckets, route and global 429s.

use super::*;

#[tokio::test]
async fn sends_past_a_bucket_wait_for_its_reset_instead_of_hitting_429() {
    let config = FakeDiscordConfig {
        message_limit: 2,
        message_window: Duration::from_millis(400),
        ..fake_config()
    };
    let (fake, adapter, _) = rest_only(config, limits()).await;
    let started = Instant::now();
    for i in 0..5 {
        adapter
            .send(&reply("500", &format!("message {i}")))
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "two resets were waited for"
    );
    assert!(
        fake.requests().iter().all(|r| r.status == 200),
        "no 429 was provoked"
    );
    assert_eq!(fake.bot_messages().len(), 5);
    // Another channel is another bucket: no wait.
    let other = Instant::now();
    adapter.send(&reply("600", "elsewhere")).await.unwrap();
    assert!(other.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn a_route_429_is_waited_out_and_retried() {
    let (fake, adapter, _) = rest_only(fake_config(), limits()).await;
    fake.fail_rest(RestFault::RateLimited {
        retry_after: Duration::from_millis(300),
        global: false,
    });
    let started = Instant::now();
    adapter.send(&reply("500", "patience")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
}

#[tokio::test]
async fn a_global_429_holds_calls_on_every_route() {
    let (fake, adapter, _) = rest_only(fake_config(), limits()).await;
    let adapter = Arc::new(adapter);
    fake.fail_rest(RestFault::RateLimited {
        retry_after: Duration::from_millis(400),
        global: true,
    });
    let started = Instant::now();
    let send = tokio::spawn({
        let adapter = adapter.clone();
        async move { adapter.send(&reply("500", "first")).await }
    });
    assert!(fake.wait_for_requests(1, WAIT).await);
    // The 429 is recorded as it is answered; give the client a moment to read it (nothing
    // observable marks that instant).
    tokio::time::sleep(Duration::from_millis(50)).await;
    adapter
        .typing(&ChatRef {
            chat_id: "600".into(),
            thread_id: None,
        })
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "typing waited for the global limit"
    );
    send.await.unwrap().unwrap();
    assert_eq!(
        fake.requests().iter().filter(|r| r.status == 429).count(),
        1
    );
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_cap_fails_at_once() {
    let limits = Limits {
        max_rate_limit_wait: Duration::from_millis(100),
        ..limits()
    };
    let (fake, adapter, _) = rest_only(fake_config(), limits).await;
    fake.fail_rest(RestFault::RateLimited {
        retry_after: Duration::from_secs(5),
        global: false,
    });
    let started = Instant::now();
    let err = adapter.send(&reply("500", "hurry")).await.unwrap_err();
    assert_eq!(
        err,
        ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(5))
        }
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}
