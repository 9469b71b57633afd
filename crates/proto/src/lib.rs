#![doc = include_str!("../README.md")]

/// `identity.v1`: accounts, sessions and tokens.
pub mod identity {
    pub mod v1 {
        tonic::include_proto!("identity.v1");
    }
}

/// `chat.v1`: conversations, messages and streamed replies.
pub mod chat {
    pub mod v1 {
        tonic::include_proto!("chat.v1");
    }
}

/// `billing.v1`: plans, monthly token usage and quota reservations.
pub mod billing {
    pub mod v1 {
        tonic::include_proto!("billing.v1");
    }
}

/// `analytics.v1`: the operators' figures.
pub mod analytics {
    pub mod v1 {
        tonic::include_proto!("analytics.v1");
    }
}

pub use prost_types::Timestamp;

/// A refusal as every service sends it: the gRPC code, a message, and the
/// stable problem code (with field `errors` for `validation_failed`) as JSON
/// in the status details, `{"code": "...", "errors": {...}}`. The gateway
/// turns the details into the RFC 9457 problem body.
pub fn problem_status(
    code: tonic::Code,
    problem: &str,
    message: &str,
    errors: Option<serde_json::Value>,
) -> tonic::Status {
    let mut details = serde_json::json!({ "code": problem });
    if let Some(errors) = errors {
        details["errors"] = errors;
    }
    tonic::Status::with_details(
        code,
        message,
        serde_json::to_vec(&details).unwrap_or_default().into(),
    )
}

/// The stable problem code a refusal carries (see [`problem_status`]).
pub fn problem_code(status: &tonic::Status) -> Option<String> {
    let details: serde_json::Value = serde_json::from_slice(status.details()).ok()?;
    details.get("code")?.as_str().map(str::to_owned)
}

/// A UUID from a request field; refused as `validation_failed` naming the
/// field.
pub fn parse_uuid(value: &str, field: &str) -> Result<uuid::Uuid, tonic::Status> {
    uuid::Uuid::parse_str(value).map_err(|_| {
        problem_status(
            tonic::Code::InvalidArgument,
            "validation_failed",
            &format!("{field} is not a UUID"),
            Some(serde_json::json!({ field: "is not a valid id" })),
        )
    })
}

/// `at` on the wire.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The answer to an outage (the service's database cannot be reached in
/// time): UNAVAILABLE `unavailable`, logged with its cause.
pub fn unavailable(error: &anyhow::Error) -> tonic::Status {
    tracing::error!(error = format!("{error:#}"), "database unavailable");
    problem_status(
        tonic::Code::Unavailable,
        "unavailable",
        "try again later",
        None,
    )
}

/// The answer to a bug or an outage nobody planned for: INTERNAL
/// `internal`, logged with its cause.
pub fn internal(error: &anyhow::Error) -> tonic::Status {
    tracing::error!(error = format!("{error:#}"), "unexpected error");
    problem_status(tonic::Code::Internal, "internal", "internal error", None)
}
