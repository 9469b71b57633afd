// The analytics database, as migrations/analytics creates it. The
// camelCase identifiers are folded to lower case by PostgreSQL; the Rust
// names are snake_case with `sql_name` pointing at the real column. The
// inbox is aichat-messaging's; partitions are their parents'.

diesel::table! {
    #[sql_name = "backfillcursors"]
    backfill_cursors (source) {
        #[max_length = 50]
        source -> Varchar,
        after -> Text,
        rows -> Int8,
        #[sql_name = "finishedat"]
        finished_at -> Nullable<Timestamp>,
        #[sql_name = "updatedat"]
        updated_at -> Timestamp,
    }
}

diesel::table! {
    #[sql_name = "chatanalytics"]
    chat_analytics (day, user_id, model) {
        day -> Date,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[max_length = 100]
        model -> Varchar,
        messages -> Int8,
        #[sql_name = "prompttokens"]
        prompt_tokens -> Int8,
        #[sql_name = "completiontokens"]
        completion_tokens -> Int8,
        #[sql_name = "totaltokens"]
        total_tokens -> Int8,
        #[sql_name = "costusd"]
        cost_usd -> Numeric,
    }
}

diesel::table! {
    #[sql_name = "chatdaily"]
    chat_daily (day) {
        day -> Date,
        messages -> Int8,
        #[sql_name = "totaltokens"]
        total_tokens -> Int8,
        #[sql_name = "costusd"]
        cost_usd -> Numeric,
    }
}

diesel::table! {
    conversations (conversation_id) {
        #[sql_name = "conversationid"]
        conversation_id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[max_length = 100]
        model -> Nullable<Varchar>,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "messagecount"]
        message_count -> Int4,
        #[sql_name = "tokencount"]
        token_count -> Int4,
        #[sql_name = "countersversion"]
        counters_version -> Nullable<Timestamp>,
        #[sql_name = "deletedat"]
        deleted_at -> Nullable<Timestamp>,
        #[sql_name = "updatedat"]
        updated_at -> Timestamp,
    }
}

diesel::table! {
    #[sql_name = "conversationsdaily"]
    conversations_daily (day) {
        day -> Date,
        conversations -> Int8,
        messages -> Int8,
        tokens -> Int8,
    }
}

diesel::table! {
    #[sql_name = "conversationsusermonthly"]
    conversations_user_monthly (month, user_id) {
        month -> Date,
        #[sql_name = "userid"]
        user_id -> Uuid,
        conversations -> Int8,
        tokens -> Int8,
    }
}

diesel::table! {
    invoices (invoice_id) {
        #[sql_name = "invoiceid"]
        invoice_id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "subscriptionid"]
        subscription_id -> Nullable<Uuid>,
        #[max_length = 50]
        #[sql_name = "invoicenumber"]
        invoice_number -> Varchar,
        #[max_length = 50]
        status -> Varchar,
        subtotal -> Numeric,
        tax -> Numeric,
        total -> Numeric,
        #[sql_name = "duedate"]
        due_date -> Nullable<Date>,
        #[sql_name = "paidat"]
        paid_at -> Nullable<Timestamp>,
        #[sql_name = "createdat"]
        created_at -> Timestamp,
        version -> Timestamp,
        #[sql_name = "updatedat"]
        updated_at -> Timestamp,
    }
}

diesel::table! {
    messages (message_id, created_at) {
        #[sql_name = "messageid"]
        message_id -> Uuid,
        #[sql_name = "createdat"]
        created_at -> Timestamp,
        #[sql_name = "conversationid"]
        conversation_id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[max_length = 50]
        role -> Varchar,
        #[sql_name = "tokencount"]
        token_count -> Int4,
        #[max_length = 100]
        model -> Nullable<Varchar>,
    }
}

diesel::table! {
    payments (payment_id) {
        #[sql_name = "paymentid"]
        payment_id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        amount -> Numeric,
        #[sql_name = "amountrefunded"]
        amount_refunded -> Numeric,
        #[max_length = 3]
        currency -> Varchar,
        #[max_length = 50]
        status -> Varchar,
        #[sql_name = "createdat"]
        created_at -> Timestamp,
        version -> Timestamp,
        #[sql_name = "updatedat"]
        updated_at -> Timestamp,
    }
}

diesel::table! {
    #[sql_name = "paymentslifetime"]
    payments_lifetime (user_id, amount) {
        #[sql_name = "userid"]
        user_id -> Uuid,
        amount -> Numeric,
        #[sql_name = "paymentcount"]
        payment_count -> Int8,
        total -> Numeric,
    }
}

diesel::table! {
    plans (id) {
        id -> Uuid,
        #[max_length = 100]
        name -> Varchar,
        #[max_length = 50]
        tier -> Varchar,
        #[sql_name = "monthlyprice"]
        monthly_price -> Numeric,
        #[sql_name = "yearlyprice"]
        yearly_price -> Nullable<Numeric>,
        #[sql_name = "updatedat"]
        updated_at -> Timestamp,
    }
}

diesel::table! {
    #[sql_name = "revenueanalytics"]
    revenue_analytics (day) {
        day -> Date,
        revenue -> Numeric,
        #[sql_name = "newsubscriptions"]
        new_subscriptions -> Int4,
        #[sql_name = "churnedsubscriptions"]
        churned_subscriptions -> Int4,
        mrr -> Nullable<Numeric>,
        #[sql_name = "updatedat"]
        updated_at -> Timestamp,
    }
}

diesel::table! {
    #[sql_name = "signupsdaily"]
    signups_daily (day) {
        day -> Date,
        users -> Int8,
    }
}

diesel::table! {
    subscriptions (user_id) {
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "subscriptionid"]
        subscription_id -> Nullable<Uuid>,
        #[sql_name = "planid"]
        plan_id -> Nullable<Uuid>,
        #[max_length = 50]
        #[sql_name = "plantier"]
        plan_tier -> Nullable<Varchar>,
        #[max_length = 50]
        status -> Varchar,
        #[max_length = 10]
        #[sql_name = "billinginterval"]
        billing_interval -> Nullable<Varchar>,
        #[sql_name = "currentperiodstart"]
        current_period_start -> Nullable<Timestamp>,
        #[sql_name = "currentperiodend"]
        current_period_end -> Nullable<Timestamp>,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "canceledat"]
        canceled_at -> Nullable<Timestamp>,
        version -> Timestamp,
        #[sql_name = "updatedat"]
        updated_at -> Timestamp,
    }
}

diesel::table! {
    #[sql_name = "subscriptionsactive"]
    subscriptions_active (plan_id, plan_tier, billing_interval, period_start_day, period_end_day) {
        #[sql_name = "planid"]
        plan_id -> Uuid,
        #[sql_name = "plantier"]
        #[max_length = 50]
        plan_tier -> Varchar,
        #[sql_name = "billinginterval"]
        #[max_length = 10]
        billing_interval -> Varchar,
        #[sql_name = "periodstartday"]
        period_start_day -> Date,
        #[sql_name = "periodendday"]
        period_end_day -> Date,
        subscriptions -> Int8,
    }
}

diesel::table! {
    #[sql_name = "tokenusage"]
    token_usage (usage_id, billing_month) {
        #[sql_name = "usageid"]
        usage_id -> Uuid,
        #[sql_name = "billingmonth"]
        billing_month -> Date,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "conversationid"]
        conversation_id -> Nullable<Uuid>,
        #[max_length = 100]
        provider -> Varchar,
        #[max_length = 100]
        model -> Varchar,
        #[sql_name = "prompttokens"]
        prompt_tokens -> Int4,
        #[sql_name = "completiontokens"]
        completion_tokens -> Int4,
        #[sql_name = "totaltokens"]
        total_tokens -> Int4,
        #[sql_name = "costusd"]
        cost_usd -> Numeric,
        #[sql_name = "createdat"]
        created_at -> Timestamp,
    }
}

diesel::table! {
    #[sql_name = "tokenusagemonthly"]
    token_usage_monthly (billing_month, model) {
        #[sql_name = "billingmonth"]
        billing_month -> Date,
        #[max_length = 100]
        model -> Varchar,
        #[sql_name = "usagecount"]
        usage_count -> Int8,
        #[sql_name = "totaltokens"]
        total_tokens -> Int8,
        #[sql_name = "costusd"]
        cost_usd -> Numeric,
    }
}

diesel::table! {
    #[sql_name = "tokenusageusermonthly"]
    token_usage_user_monthly (billing_month, user_id) {
        #[sql_name = "billingmonth"]
        billing_month -> Date,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "usagecount"]
        usage_count -> Int8,
        #[sql_name = "totaltokens"]
        total_tokens -> Int8,
        #[sql_name = "costusd"]
        cost_usd -> Numeric,
    }
}

diesel::table! {
    #[sql_name = "userevents"]
    user_events (event_id, occurred_at) {
        #[sql_name = "eventid"]
        event_id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "type"]
        #[max_length = 100]
        type_ -> Varchar,
        #[sql_name = "occurredat"]
        occurred_at -> Timestamp,
        properties -> Jsonb,
    }
}

diesel::table! {
    users (user_id) {
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[max_length = 50]
        #[sql_name = "plantier"]
        plan_tier -> Varchar,
        #[sql_name = "plantierversion"]
        plan_tier_version -> Nullable<Timestamp>,
        #[max_length = 50]
        role -> Varchar,
        #[sql_name = "emailverified"]
        email_verified -> Bool,
        #[sql_name = "isactive"]
        is_active -> Bool,
        #[sql_name = "profileversion"]
        profile_version -> Nullable<Timestamp>,
        #[sql_name = "deletedat"]
        deleted_at -> Nullable<Timestamp>,
        #[sql_name = "updatedat"]
        updated_at -> Timestamp,
    }
}

diesel::table! {
    #[sql_name = "usersplancounts"]
    users_plan_counts (plan_tier) {
        #[sql_name = "plantier"]
        #[max_length = 50]
        plan_tier -> Varchar,
        users -> Int8,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    backfill_cursors,
    chat_analytics,
    chat_daily,
    conversations,
    conversations_daily,
    conversations_user_monthly,
    invoices,
    messages,
    payments,
    payments_lifetime,
    plans,
    revenue_analytics,
    signups_daily,
    subscriptions,
    subscriptions_active,
    token_usage,
    token_usage_monthly,
    token_usage_user_monthly,
    user_events,
    users,
    users_plan_counts,
);
