// The chat database, as migrations/chat creates it. The seed's camelCase
// identifiers are folded to lower case by PostgreSQL; Rust names are
// snake_case with `sql_name` pointing at the real column.

diesel::table! {
    #[sql_name = "aiproviders"]
    ai_providers (id) {
        id -> Uuid,
        #[max_length = 100]
        name -> Varchar,
        #[sql_name = "inputtokencostper1k"]
        input_token_cost_per_1k -> Numeric,
        #[sql_name = "outputtokencostper1k"]
        output_token_cost_per_1k -> Numeric,
        #[sql_name = "requestsperminute"]
        requests_per_minute -> Nullable<Int4>,
        #[sql_name = "requestsperday"]
        requests_per_day -> Nullable<Int4>,
        #[sql_name = "supportedmodels"]
        supported_models -> Json,
        #[sql_name = "isactive"]
        is_active -> Nullable<Bool>,
        #[sql_name = "isavailable"]
        is_available -> Nullable<Bool>,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "updatedat"]
        updated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    #[sql_name = "chatreplicas"]
    chat_replicas (id) {
        id -> Uuid,
        #[sql_name = "startedat"]
        started_at -> Timestamp,
        #[sql_name = "heartbeatat"]
        heartbeat_at -> Timestamp,
    }
}

diesel::table! {
    conversations (id) {
        id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[max_length = 500]
        title -> Varchar,
        description -> Nullable<Text>,
        #[max_length = 100]
        model -> Varchar,
        #[sql_name = "systemprompt"]
        system_prompt -> Nullable<Text>,
        #[sql_name = "messagecount"]
        message_count -> Nullable<Int4>,
        #[sql_name = "tokencount"]
        token_count -> Nullable<Int4>,
        #[sql_name = "isarchived"]
        is_archived -> Nullable<Bool>,
        #[sql_name = "archivedat"]
        archived_at -> Nullable<Timestamp>,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "updatedat"]
        updated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    messages (id) {
        id -> Uuid,
        #[sql_name = "conversationid"]
        conversation_id -> Uuid,
        #[max_length = 50]
        role -> Varchar,
        content -> Text,
        #[sql_name = "tokencount"]
        token_count -> Int4,
        #[sql_name = "prompttokens"]
        prompt_tokens -> Nullable<Int4>,
        #[sql_name = "completiontokens"]
        completion_tokens -> Nullable<Int4>,
        #[max_length = 100]
        model -> Nullable<Varchar>,
        #[max_length = 10]
        language -> Nullable<Varchar>,
        #[sql_name = "isdeleted"]
        is_deleted -> Nullable<Bool>,
        #[sql_name = "deletedat"]
        deleted_at -> Nullable<Timestamp>,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "updatedat"]
        updated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    #[sql_name = "pendingsends"]
    pending_sends (id) {
        id -> Uuid,
        #[sql_name = "replicaid"]
        replica_id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "conversationid"]
        conversation_id -> Nullable<Uuid>,
        #[sql_name = "usermessageid"]
        user_message_id -> Nullable<Uuid>,
        #[sql_name = "reservationid"]
        reservation_id -> Uuid,
        #[max_length = 100]
        provider -> Varchar,
        #[max_length = 100]
        model -> Varchar,
        #[sql_name = "prompttokens"]
        prompt_tokens -> Int4,
        #[sql_name = "completiontokens"]
        completion_tokens -> Int4,
        #[sql_name = "createdat"]
        created_at -> Timestamp,
        #[sql_name = "checkpointat"]
        checkpoint_at -> Timestamp,
        #[sql_name = "apikeyid"]
        api_key_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    #[sql_name = "tokenusage"]
    token_usage (id, billing_month) {
        id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "conversationid"]
        conversation_id -> Nullable<Uuid>,
        #[sql_name = "messageid"]
        message_id -> Nullable<Uuid>,
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
        #[sql_name = "billingmonth"]
        billing_month -> Date,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "apikeyid"]
        api_key_id -> Nullable<Uuid>,
    }
}

diesel::joinable!(messages -> conversations (conversation_id));
diesel::joinable!(pending_sends -> conversations (conversation_id));
diesel::joinable!(pending_sends -> messages (user_message_id));
diesel::joinable!(token_usage -> conversations (conversation_id));
diesel::joinable!(token_usage -> messages (message_id));

diesel::allow_tables_to_appear_in_same_query!(
    ai_providers,
    chat_replicas,
    conversations,
    messages,
    pending_sends,
    token_usage,
);
