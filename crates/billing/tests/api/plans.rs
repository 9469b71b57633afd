//! ListPlans and GetLimits: the seeded plans, money as decimal strings.

use aichat_proto::billing::v1::{Empty, UserRef};
use uuid::Uuid;

use crate::helpers::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_seeded_plans_are_listed_cheapest_first_with_decimal_prices() {
    let h = Harness::start().await;
    let plans = h
        .client
        .clone()
        .list_plans(Empty {})
        .await
        .unwrap()
        .into_inner()
        .items;
    let names: Vec<_> = plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Free", "Plus", "Pro"]);

    let (free, plus, pro) = (&plans[0], &plans[1], &plans[2]);
    assert_eq!(free.monthly_price, "0.00");
    assert_eq!(free.yearly_price, None);
    assert_eq!(free.monthly_token_quota, 100_000);
    assert_eq!(free.max_conversations, Some(20));
    assert_eq!(free.max_messages_per_conversation, Some(50));

    assert_eq!(plus.monthly_price, "20.00");
    assert_eq!(plus.yearly_price.as_deref(), Some("200.00"));
    assert_eq!(plus.monthly_token_quota, 2_000_000);
    assert_eq!(plus.max_conversations, Some(200));
    assert_eq!(plus.max_messages_per_conversation, Some(500));

    assert_eq!(pro.monthly_price, "50.00");
    assert_eq!(pro.yearly_price.as_deref(), Some("500.00"));
    assert_eq!(pro.monthly_token_quota, 10_000_000);
    assert_eq!(pro.max_conversations, None, "unlimited");
    assert_eq!(pro.max_messages_per_conversation, None, "unlimited");

    for plan in &plans {
        assert!(Uuid::parse_str(&plan.id).is_ok());
        assert!(!plan.features.is_empty(), "{} has features", plan.name);
    }

    // An inactive plan is not on sale.
    h.execute("UPDATE plans SET isActive = FALSE WHERE name = 'Plus'")
        .await;
    let names: Vec<_> = h
        .client
        .clone()
        .list_plans(Empty {})
        .await
        .unwrap()
        .into_inner()
        .items
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["Free", "Pro"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_billing_has_not_heard_of_is_on_the_free_plan() {
    let h = Harness::start().await;
    let user = Uuid::now_v7();
    let limits = h
        .client
        .clone()
        .get_limits(UserRef {
            user_id: user.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(limits.plan_name, "Free");
    assert_eq!(limits.monthly_quota, 100_000);
    assert_eq!(limits.max_conversations, Some(20));
    assert_eq!(limits.max_messages_per_conversation, Some(50));
    assert_eq!(limits.conversations_count, 0);
    assert!(
        h.row(user).await.is_some(),
        "the row was started on first use"
    );
    h.stop().await;
}
