// The billing database, as migrations/billing creates it. The seed's
// camelCase identifiers are folded to lower case by PostgreSQL; the Rust
// names are snake_case with `sql_name` pointing at the real column. The
// outbox and inbox tables are aichat-messaging's.

diesel::table! {
    #[sql_name = "deletedusers"]
    deleted_users (user_id) {
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "deletedat"]
        deleted_at -> Timestamp,
        #[sql_name = "tokensused"]
        tokens_used -> Int8,
        #[sql_name = "costusd"]
        cost_usd -> Numeric,
    }
}

diesel::table! {
    plans (id) {
        id -> Uuid,
        #[max_length = 100]
        name -> Varchar,
        #[max_length = 255]
        #[sql_name = "stripepriceid"]
        stripe_price_id -> Nullable<Varchar>,
        #[sql_name = "monthlyprice"]
        monthly_price -> Numeric,
        #[sql_name = "yearlyprice"]
        yearly_price -> Nullable<Numeric>,
        #[sql_name = "monthlytokenquota"]
        monthly_token_quota -> Int4,
        #[sql_name = "maxconversations"]
        max_conversations -> Nullable<Int4>,
        #[sql_name = "maxmessagesperconversation"]
        max_messages_per_conversation -> Nullable<Int4>,
        features -> Nullable<Json>,
        #[sql_name = "isactive"]
        is_active -> Nullable<Bool>,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "updatedat"]
        updated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    #[sql_name = "tokenreservations"]
    token_reservations (id) {
        id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "billingmonth"]
        billing_month -> Date,
        tokens -> Int4,
        #[sql_name = "expiresat"]
        expires_at -> Timestamp,
        #[sql_name = "createdat"]
        created_at -> Timestamp,
    }
}

diesel::table! {
    #[sql_name = "usagetracking"]
    usage_tracking (id) {
        id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "billingmonth"]
        billing_month -> Date,
        #[sql_name = "tokensused"]
        tokens_used -> Nullable<Int4>,
        #[sql_name = "messagescount"]
        messages_count -> Nullable<Int4>,
        #[sql_name = "conversationscount"]
        conversations_count -> Nullable<Int4>,
        #[sql_name = "monthlyquota"]
        monthly_quota -> Int4,
        #[sql_name = "costthismonth"]
        cost_this_month -> Nullable<Numeric>,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "updatedat"]
        updated_at -> Nullable<Timestamp>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    deleted_users,
    plans,
    token_reservations,
    usage_tracking,
);
