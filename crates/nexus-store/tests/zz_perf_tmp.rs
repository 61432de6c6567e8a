use nexus_store::testing::*;
use nexus_store::*;
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf() {
    for h in [Harness::sqlite().await.unwrap()] {
        let s = &h.store;
        let w = world(s.as_ref()).await;
        let n = 2000;
        let t = std::time::Instant::now();
        let mut d = [std::time::Duration::ZERO; 4];
        for i in 0..n {
            let t0 = std::time::Instant::now();
            let item = s
                .enqueue(&inbound(&w.session, "hello there", Some(&format!("e{i}"))))
                .await
                .unwrap()
                .item()
                .clone();
            let t1 = std::time::Instant::now();
            s.begin_attempt(item.turn_id).await.unwrap();
            let t2 = std::time::Instant::now();
            let _ctx = s.recent_messages(w.session.id, 20).await.unwrap();
            let t3 = std::time::Instant::now();
            let answer = reply(
                &w.session,
                "an answer of some length, like a model would give",
            );
            let commit = TurnCommit {
                turn_id: item.turn_id,
                session_id: w.session.id,
                delivery: Some(NewDelivery {
                    id: nexus_core::DeliveryId::new(),
                    message_id: answer.id,
                    channel: w.session.channel,
                    status: DeliveryStatus::Delivered,
                }),
                usage: vec![UsageRecord {
                    id: uuid::Uuid::new_v4(),
                    turn_id: item.turn_id,
                    session_id: w.session.id,
                    user_id: w.user.id,
                    agent_id: w.agent.id,
                    model: "m".into(),
                    usage: Default::default(),
                    cost_micros: None,
                    created_at: now(),
                }],
                messages: vec![answer],
            };
            let t4 = std::time::Instant::now();
            s.complete_turn(&commit).await.unwrap();
            d[0] += t1 - t0; d[1] += t2 - t1; d[2] += t3 - t2; d[3] += t4.elapsed();
        }
        eprintln!("enqueue {:?} attempt {:?} recent {:?} complete {:?}", d[0] / n, d[1] / n, d[2] / n, d[3] / n);
        eprintln!("{:?}: {:?} per turn", s.backend(), t.elapsed() / n);
        h.cleanup().await;
    }
}
