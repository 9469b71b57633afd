//! Bad arguments are INVALID_ARGUMENT validation_failed naming the field.

use aichat_proto::analytics::v1::{
    DaysRequest, MonthRequest, PageRequest, RangeRequest, TopUsersRequest,
};

use crate::helpers::{Harness, assert_invalid};

#[tokio::test]
async fn bad_days_months_limits_and_ranges_are_refused() {
    let h = Harness::start().await;
    let mut c = h.client.clone();
    assert_invalid(c.signups(DaysRequest { days: 367 }).await, "days");
    assert_invalid(
        c.conversation_length(DaysRequest { days: 1000 }).await,
        "days",
    );
    assert_invalid(
        c.top_users(TopUsersRequest {
            days: 400,
            limit: 1,
        })
        .await,
        "days",
    );
    assert_invalid(
        c.top_users(TopUsersRequest {
            days: 1,
            limit: 101,
        })
        .await,
        "limit",
    );
    for month in [
        "2026",
        "2026-13",
        "2026-1",
        "26-01-01",
        "2026-01-01",
        "abcd-ef",
    ] {
        assert_invalid(
            c.token_usage_by_user(MonthRequest {
                month: month.into(),
                ..Default::default()
            })
            .await,
            "month",
        );
        assert_invalid(
            c.token_usage_by_model(MonthRequest {
                month: month.into(),
                ..Default::default()
            })
            .await,
            "month",
        );
    }
    // The paged lists: a page of 1..1000 rows, a cursor of theirs.
    let bad_limit = PageRequest {
        limit: 1001,
        cursor: String::new(),
    };
    assert_invalid(c.overdue_invoices(bad_limit.clone()).await, "limit");
    assert_invalid(c.lifetime_value(bad_limit).await, "limit");
    assert_invalid(
        c.token_usage_by_user(MonthRequest {
            limit: 1001,
            ..Default::default()
        })
        .await,
        "limit",
    );
    for cursor in ["nonsense", "W10", "WyJ4Il0"] {
        let page = PageRequest {
            limit: 0,
            cursor: cursor.into(),
        };
        assert_invalid(c.overdue_invoices(page.clone()).await, "cursor");
        assert_invalid(c.lifetime_value(page).await, "cursor");
        assert_invalid(
            c.token_usage_by_user(MonthRequest {
                cursor: cursor.into(),
                ..Default::default()
            })
            .await,
            "cursor",
        );
    }
    let range = |from: &str, to: &str| RangeRequest {
        from: from.into(),
        to: to.into(),
    };
    assert_invalid(
        c.daily_series(range("2026-02-30", "2026-03-01")).await,
        "from",
    );
    assert_invalid(c.daily_series(range("", "2026-03-01")).await, "from");
    assert_invalid(c.daily_series(range("2026-03-01", "tomorrow")).await, "to");
    assert_invalid(
        c.daily_series(range("2026-03-02", "2026-03-01")).await,
        "to",
    );
    assert_invalid(
        c.daily_series(range("2025-01-01", "2026-01-02")).await,
        "to",
    );
    // The edges are accepted.
    assert_eq!(
        c.signups(DaysRequest { days: 366 })
            .await
            .unwrap()
            .into_inner()
            .items
            .len(),
        366
    );
    assert_eq!(
        c.daily_series(range("2025-01-01", "2026-01-01"))
            .await
            .unwrap()
            .into_inner()
            .items
            .len(),
        366
    );
    assert_eq!(
        c.top_users(TopUsersRequest {
            days: 1,
            limit: 100
        })
        .await
        .unwrap()
        .into_inner()
        .items
        .len(),
        0
    );
    // Without data: MRR is 0.00, the averages are empty (the seed's NULL).
    let mrr = c
        .mrr(aichat_proto::analytics::v1::Empty {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mrr.mrr, "0.00");
    let length = c
        .conversation_length(DaysRequest { days: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (length.avg_messages.as_str(), length.avg_tokens.as_str()),
        ("", "")
    );
    h.stop().await;
}
