//! The identity service over gRPC, against real PostgreSQL and RabbitMQ.

mod admin;
mod outbox;
