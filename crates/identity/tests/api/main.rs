//! The identity service over gRPC, against real PostgreSQL and RabbitMQ.

mod admin;
mod api_keys;
mod export;
mod mail;
mod outbox;
mod retention;
mod smtp;
