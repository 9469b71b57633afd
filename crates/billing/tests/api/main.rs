//! The billing service over gRPC and RabbitMQ, against real PostgreSQL and
//! RabbitMQ: each test has its own database and its own exchange.

mod concurrency;
mod events;
mod helpers;
mod plans;
mod reservations;
mod rollover;
mod stripe;
mod stripe_standin;
mod stripe_tables;
mod subscriptions_api;
mod validation;
mod webhooks;
