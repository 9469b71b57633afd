//! The mock over HTTP, as any client would see it: each format's shapes,
//! routing, validation, and the control API.

mod control;
mod formats;
mod helpers;
