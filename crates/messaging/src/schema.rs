//! The outbox and inbox tables, the same in every service database (each
//! service's first migration creates them).

diesel::table! {
    inbox (event_id) {
        #[sql_name = "eventid"]
        event_id -> Uuid,
        #[max_length = 100]
        #[sql_name = "eventtype"]
        event_type -> Varchar,
        #[sql_name = "processedat"]
        processed_at -> Timestamp,
    }
}

diesel::table! {
    outbox (id) {
        id -> Uuid,
        #[max_length = 100]
        #[sql_name = "eventtype"]
        event_type -> Varchar,
        payload -> Jsonb,
        #[sql_name = "createdat"]
        created_at -> Timestamp,
        #[sql_name = "publishedat"]
        published_at -> Nullable<Timestamp>,
        attempts -> Int4,
        #[sql_name = "lasterror"]
        last_error -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(inbox, outbox,);
