#![doc = include_str!("../README.md")]

/// `identity.v1`: accounts, sessions and tokens.
pub mod identity {
    pub mod v1 {
        tonic::include_proto!("identity.v1");
    }
}

pub use prost_types::Timestamp;
