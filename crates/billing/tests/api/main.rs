//! The billing service over gRPC and RabbitMQ, against real PostgreSQL and
//! RabbitMQ: each test has its own database and its own exchange.
// Stripe's objects written out whole in `json!` nest deeper than the default.
#![recursion_limit = "256"]

mod batches;
mod concurrency;
mod deletion;
mod events;
mod export;
mod helpers;
mod invoice_events;
mod plans;
mod reconcile;
mod reservations;
mod rollover;
mod stripe;
mod stripe_standin;
mod stripe_sync;
mod stripe_tables;
mod subscriptions_api;
mod validation;
mod webhooks;
