#![doc = include_str!("../README.md")]

/// `identity.v1`: accounts, sessions and tokens.
pub mod identity {
    pub mod v1 {
        tonic::include_proto!("identity.v1");
    }
}

/// `chat.v1`: conversations, messages and streamed replies.
pub mod chat {
    pub mod v1 {
        tonic::include_proto!("chat.v1");
    }
}

/// `billing.v1`: plans, monthly token usage and quota reservations.
pub mod billing {
    pub mod v1 {
        tonic::include_proto!("billing.v1");
    }
}

pub use prost_types::Timestamp;
