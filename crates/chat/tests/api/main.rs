//! The chat service's own database behaviour and event consumption, against
//! real PostgreSQL and RabbitMQ. Conversations and replies end to end are
//! tested through the gateway (crates/gateway/tests).

mod counters;
mod export;
mod recovery;
mod storage;
mod streaming;
mod usage;
