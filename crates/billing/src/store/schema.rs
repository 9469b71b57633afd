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
    invoices (id) {
        id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "subscriptionid"]
        subscription_id -> Nullable<Uuid>,
        #[max_length = 50]
        #[sql_name = "invoicenumber"]
        invoice_number -> Varchar,
        #[max_length = 255]
        #[sql_name = "stripeinvoiceid"]
        stripe_invoice_id -> Varchar,
        subtotal -> Numeric,
        tax -> Numeric,
        total -> Numeric,
        #[max_length = 50]
        status -> Varchar,
        #[sql_name = "duedate"]
        due_date -> Nullable<Date>,
        #[sql_name = "paidat"]
        paid_at -> Nullable<Timestamp>,
        #[max_length = 500]
        #[sql_name = "pdfurl"]
        pdf_url -> Nullable<Varchar>,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "updatedat"]
        updated_at -> Nullable<Timestamp>,
        #[sql_name = "stripeeventcreatedat"]
        stripe_event_created_at -> Nullable<Timestamp>,
        #[sql_name = "overduenotifiedat"]
        overdue_notified_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    payments (id) {
        id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "subscriptionid"]
        subscription_id -> Nullable<Uuid>,
        #[max_length = 255]
        #[sql_name = "stripepaymentintentid"]
        stripe_payment_intent_id -> Varchar,
        #[max_length = 255]
        #[sql_name = "stripeinvoiceid"]
        stripe_invoice_id -> Nullable<Varchar>,
        amount -> Numeric,
        #[max_length = 3]
        currency -> Varchar,
        #[max_length = 50]
        status -> Varchar,
        description -> Nullable<Text>,
        metadata -> Nullable<Json>,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "updatedat"]
        updated_at -> Nullable<Timestamp>,
        #[sql_name = "amountrefunded"]
        amount_refunded -> Numeric,
        #[sql_name = "stripeeventcreatedat"]
        stripe_event_created_at -> Nullable<Timestamp>,
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
        #[max_length = 255]
        #[sql_name = "stripeyearlypriceid"]
        stripe_yearly_price_id -> Nullable<Varchar>,
    }
}

diesel::table! {
    #[sql_name = "stripecustomers"]
    stripe_customers (user_id) {
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[max_length = 255]
        #[sql_name = "stripecustomerid"]
        stripe_customer_id -> Varchar,
        #[sql_name = "createdat"]
        created_at -> Timestamp,
    }
}

diesel::table! {
    #[sql_name = "stripeevents"]
    stripe_events (stripe_event_id) {
        #[max_length = 255]
        #[sql_name = "stripeeventid"]
        stripe_event_id -> Varchar,
        #[max_length = 100]
        #[sql_name = "eventtype"]
        event_type -> Varchar,
        #[sql_name = "eventcreatedat"]
        event_created_at -> Timestamp,
        #[sql_name = "processedat"]
        processed_at -> Timestamp,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "planid"]
        plan_id -> Uuid,
        #[max_length = 255]
        #[sql_name = "stripesubscriptionid"]
        stripe_subscription_id -> Varchar,
        #[max_length = 255]
        #[sql_name = "stripecustomerid"]
        stripe_customer_id -> Varchar,
        #[max_length = 50]
        status -> Varchar,
        #[sql_name = "currentperiodstart"]
        current_period_start -> Timestamp,
        #[sql_name = "currentperiodend"]
        current_period_end -> Timestamp,
        #[sql_name = "cancellationdate"]
        cancellation_date -> Nullable<Timestamp>,
        #[max_length = 255]
        #[sql_name = "cancellationreason"]
        cancellation_reason -> Nullable<Varchar>,
        #[sql_name = "cancelatperiodend"]
        cancel_at_period_end -> Nullable<Bool>,
        #[sql_name = "trialendsat"]
        trial_ends_at -> Nullable<Timestamp>,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "updatedat"]
        updated_at -> Nullable<Timestamp>,
        #[sql_name = "stripeeventcreatedat"]
        stripe_event_created_at -> Nullable<Timestamp>,
        #[max_length = 10]
        #[sql_name = "billinginterval"]
        billing_interval -> Varchar,
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

diesel::joinable!(invoices -> subscriptions (subscription_id));
diesel::joinable!(payments -> subscriptions (subscription_id));
diesel::joinable!(subscriptions -> plans (plan_id));

diesel::allow_tables_to_appear_in_same_query!(
    deleted_users,
    invoices,
    payments,
    plans,
    stripe_customers,
    stripe_events,
    subscriptions,
    token_reservations,
    usage_tracking,
);
