//! The analytics service over gRPC and RabbitMQ, against real PostgreSQL and
//! RabbitMQ: each test has its own database and its own exchange.
mod backfill;
mod events;
mod helpers;
mod live;
mod queries;
mod scenario;
mod validation;
