// The identity database, as migrations/identity creates it. The seed's
// camelCase identifiers are folded to lower case by PostgreSQL; the Rust
// names are snake_case with `sql_name` pointing at the real column.

diesel::table! {
    #[sql_name = "apikeys"]
    api_keys (id) {
        id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[max_length = 100]
        name -> Varchar,
        #[max_length = 64]
        #[sql_name = "keyhash"]
        key_hash -> Varchar,
        #[max_length = 20]
        prefix -> Varchar,
        #[sql_name = "createdat"]
        created_at -> Timestamp,
        #[sql_name = "expiresat"]
        expires_at -> Nullable<Timestamp>,
        #[sql_name = "lastusedat"]
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    #[sql_name = "emailverifications"]
    email_verifications (id) {
        id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[max_length = 255]
        email -> Varchar,
        #[max_length = 255]
        token -> Varchar,
        #[sql_name = "isverified"]
        is_verified -> Nullable<Bool>,
        #[sql_name = "verifiedat"]
        verified_at -> Nullable<Timestamp>,
        #[sql_name = "expiresat"]
        expires_at -> Timestamp,
        #[sql_name = "attemptcount"]
        attempt_count -> Nullable<Int4>,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "updatedat"]
        updated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    #[sql_name = "mailoutbox"]
    mail_outbox (id) {
        id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[max_length = 255]
        recipient -> Varchar,
        #[max_length = 255]
        subject -> Varchar,
        body -> Text,
        attempts -> Int4,
        #[sql_name = "nextattemptat"]
        next_attempt_at -> Timestamp,
        #[sql_name = "lasterror"]
        last_error -> Nullable<Text>,
        #[sql_name = "createdat"]
        created_at -> Timestamp,
    }
}

diesel::table! {
    #[sql_name = "passwordresets"]
    password_resets (id) {
        id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[max_length = 255]
        token -> Varchar,
        #[max_length = 255]
        email -> Varchar,
        #[sql_name = "isused"]
        is_used -> Nullable<Bool>,
        #[sql_name = "usedat"]
        used_at -> Nullable<Timestamp>,
        #[sql_name = "expiresat"]
        expires_at -> Timestamp,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "attemptcount"]
        attempt_count -> Nullable<Int4>,
    }
}

diesel::table! {
    #[sql_name = "sessionrevocations"]
    session_revocations (session_id) {
        #[sql_name = "sessionid"]
        session_id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[sql_name = "revokedat"]
        revoked_at -> Timestamp,
    }
}

diesel::table! {
    #[sql_name = "sessionrotatedtokens"]
    session_rotated_tokens (token_hash) {
        #[max_length = 64]
        #[sql_name = "tokenhash"]
        token_hash -> Varchar,
        #[sql_name = "sessionid"]
        session_id -> Uuid,
        #[sql_name = "rotatedat"]
        rotated_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        #[sql_name = "userid"]
        user_id -> Uuid,
        #[max_length = 512]
        token -> Varchar,
        #[max_length = 500]
        #[sql_name = "useragent"]
        user_agent -> Nullable<Varchar>,
        #[sql_name = "ipaddress"]
        ip_address -> Nullable<Inet>,
        #[sql_name = "isactive"]
        is_active -> Nullable<Bool>,
        #[sql_name = "expiresat"]
        expires_at -> Timestamp,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "lastactivityat"]
        last_activity_at -> Nullable<Timestamp>,
        #[sql_name = "revokedat"]
        revoked_at -> Nullable<Timestamp>,
        #[max_length = 50]
        #[sql_name = "revokedreason"]
        revoked_reason -> Nullable<Varchar>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        #[max_length = 255]
        email -> Varchar,
        #[max_length = 255]
        password -> Varchar,
        #[max_length = 255]
        name -> Varchar,
        #[max_length = 50]
        #[sql_name = "plantier"]
        plan_tier -> Varchar,
        #[sql_name = "emailverified"]
        email_verified -> Nullable<Bool>,
        #[sql_name = "emailverifiedat"]
        email_verified_at -> Nullable<Timestamp>,
        #[sql_name = "isactive"]
        is_active -> Nullable<Bool>,
        #[sql_name = "monthlytokenused"]
        monthly_token_used -> Nullable<Int4>,
        #[sql_name = "monthlytokenreset"]
        monthly_token_reset -> Nullable<Date>,
        #[sql_name = "lastloginat"]
        last_login_at -> Nullable<Timestamp>,
        #[sql_name = "logincount"]
        login_count -> Nullable<Int4>,
        #[sql_name = "createdat"]
        created_at -> Nullable<Timestamp>,
        #[sql_name = "updatedat"]
        updated_at -> Nullable<Timestamp>,
        #[max_length = 20]
        role -> Varchar,
        #[sql_name = "plantierchangedat"]
        plan_tier_changed_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(api_keys -> users (user_id));
diesel::joinable!(email_verifications -> users (user_id));
diesel::joinable!(mail_outbox -> users (user_id));
diesel::joinable!(password_resets -> users (user_id));
diesel::joinable!(session_rotated_tokens -> sessions (session_id));
diesel::joinable!(sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    email_verifications,
    mail_outbox,
    password_resets,
    session_revocations,
    session_rotated_tokens,
    sessions,
    users,
);
