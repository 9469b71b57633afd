//! The messaging crate against a real RabbitMQ (`TEST_AMQP_URL`, or the
//! local one), an exchange per test.

mod consumer;
mod dlq;
mod helpers;
mod topology;
