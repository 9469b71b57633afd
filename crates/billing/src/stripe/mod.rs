//! Stripe, at billing's edge: the REST client billing calls
//! ([`StripeClient`]), the objects it reads ([`types`]), its form encoding
//! ([`form`]) and webhook signature verification ([`webhook`]). Wire types
//! stay here; the use cases that act on them (checkout, the portal, event
//! handling, price sync, reconciliation) are the service's.

pub mod client;
pub mod form;
pub mod payments;
pub mod types;
pub mod webhook;

pub use client::{
    API_VERSION, ApiError, DEFAULT_API_BASE, ErrorKind, ListSubscriptions, NewCheckoutSession,
    NewCustomer, NewPrice, NewProduct, Settings, StripeClient, StripeError,
};
