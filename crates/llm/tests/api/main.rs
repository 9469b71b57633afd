//! Every adapter against the mock provider (`aichat-mockllm`) over real
//! HTTP on 127.0.0.1: replies, retries before the first token, and
//! interruptions after it.

mod helpers;
mod interruptions;
mod replies;
mod retries;
