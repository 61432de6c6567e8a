//! Hand-over to the router and its acknowledgements.

use super::*;

#[tokio::test]
async fn a_failed_hand_over_is_retried_until_the_router_commits() {
    let mut h = Harness::start().await;
    h.script.lock().unwrap().extend([
        AckOutcome::Failed {
            reason: "database busy".into(),
        },
        AckOutcome::Failed {
            reason: "database busy".into(),
        },
    ]);
    let said = h.fake.say(UserSays::direct("42", "keep trying")).await;
    for _ in 0..3 {
        assert_eq!(h.next().await.external_id, said.message_id);
    }
    h.nothing_more().await;
}

#[tokio::test]
async fn a_message_the_router_keeps_failing_is_given_up_and_later_ones_still_arrive() {
    let mut h = Harness::start().await;
    h.script
        .lock()
        .unwrap()
        .extend((0..3).map(|_| AckOutcome::Failed {
            reason: "down".into(),
        }));
    let lost = h.fake.say(UserSays::direct("42", "lost")).await;
    for _ in 0..3 {
        assert_eq!(h.next().await.external_id, lost.message_id);
    }
    let later = h.fake.say(UserSays::direct("42", "later")).await;
    assert_eq!(h.next().await.external_id, later.message_id);
}

#[tokio::test]
async fn a_rejected_message_is_not_handed_over_again() {
    let mut h = Harness::start().await;
    h.script.lock().unwrap().push_back(AckOutcome::Rejected {
        reason: "not allowed".into(),
    });
    h.fake.say(UserSays::direct("42", "no")).await;
    h.next().await;
    h.nothing_more().await;
}
