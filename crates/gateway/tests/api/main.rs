//! The gateway end to end: real identity service, real PostgreSQL (a fresh
//! database per test), real RabbitMQ (an exchange per test), HTTP in front.

mod accounts;
mod admin_analytics;
mod analytics;
mod api_keys;
mod billing_api;
mod chat;
mod completions;
mod cookies;
mod helpers;
mod metering;
mod openai;
mod ops;
mod outage;
mod sessions;
mod stripe;
mod usage;
mod validation;
mod webapp;
