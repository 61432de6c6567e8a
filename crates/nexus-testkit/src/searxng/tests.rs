//! The fake SearXNG on the wire.

use serde_json::{Value, json};

use super::*;

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn searxng_answers_the_table_in_its_json_shape_and_403_without_json() {
    let fake = FakeSearxng::start().await;
    fake.set_results(
        "rust",
        vec![SearchHit::new(
            "Rust",
            "https://rust-lang.org/",
            "A language",
        )],
    );
    let (status, body) = get(&format!("{}/search?q=rust&format=json", fake.base_url())).await;
    assert_eq!(status, 200);
    let value: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["results"][0]["title"], "Rust");
    assert_eq!(value["results"][0]["parsed_url"][1], "rust-lang.org");
    assert_eq!(value["number_of_results"], 0);
    let (_, body) = get(&format!("{}/?q=nothing&format=json", fake.base_url())).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["results"],
        json!([])
    );
    fake.set_json_enabled(false);
    let (status, body) = get(&format!("{}/search?q=rust&format=json", fake.base_url())).await;
    assert_eq!(status, 403);
    assert!(body.contains("<html>"));
    assert_eq!(fake.request_count(), 3);
    assert_eq!(fake.requests()[1].path, "/");
}

#[tokio::test]
async fn searxng_faults_apply_to_the_next_requests_in_order() {
    let fake = FakeSearxng::start().await;
    fake.fail_next(
        1,
        SearxngFault::RateLimited {
            retry_after: Some(7),
        },
    );
    fake.fail_next(1, SearxngFault::MalformedJson);
    let url = format!("{}/search?q=a&format=json", fake.base_url());
    assert_eq!(get(&url).await.0, 429);
    let (status, body) = get(&url).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err());
    assert_eq!(get(&url).await.0, 200);
}
