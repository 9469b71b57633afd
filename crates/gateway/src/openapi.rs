//! The OpenAPI document, generated from the handlers' annotations.

use std::{collections::BTreeMap, sync::LazyLock};

use utoipa::{
    Modify, OpenApi,
    openapi::{
        Content, Ref, RefOr, Type,
        header::Header,
        path::Operation,
        response::Response,
        schema::Object,
        security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme},
    },
};

use crate::{
    problem::ProblemBody,
    routes::{
        accounts as a, analytics as n, api_keys as k, billing as b, chat as c, webhooks as w,
    },
};

#[derive(OpenApi)]
#[openapi(
    info(title = "AI Chat platform API", version = "1", description = "The public HTTP contract of the gateway (see API.md)."),
    paths(
        a::register, a::login, a::refresh, a::logout, a::verify_email, a::resend_verification,
        a::forgot_password, a::reset_password, a::me, a::update_me, a::change_password, a::delete_me,
        a::list_sessions, a::delete_session,
        k::create_api_key, k::list_api_keys, k::delete_api_key,
        c::models, c::create_conversation, c::list_conversations, c::get_conversation, c::update_conversation,
        c::archive, c::unarchive, c::delete_conversation, c::list_messages, c::send_message, c::delete_message,
        c::daily_usage,
        b::plans, b::usage, b::subscription, b::checkout, b::portal, b::cancel, b::resume,
        b::invoices, b::payments,
        w::stripe,
        n::signups, n::users_by_plan, n::token_usage_by_user, n::token_usage_by_model,
        n::subscriptions, n::mrr, n::top_users, n::conversation_length, n::overdue_invoices,
        n::lifetime_value, n::daily,
    ),
    components(schemas(
        ProblemBody, a::User, a::UserEnvelope, a::TokenResponse, a::SessionView, a::SessionList,
        a::RegisterBody, a::LoginBody, a::RefreshBody, a::TokenBody, a::EmailBody, a::ResetPasswordBody,
        a::UpdateMeBody, a::ChangePasswordBody, a::DeleteMeBody,
        k::ApiKeyView, k::ApiKeyList, k::CreatedApiKey, k::CreateApiKeyBody,
        c::Model, c::ModelList, c::Conversation, c::ConversationPage, c::Message, c::MessagePage, c::Usage,
        c::SendResult, c::DoneEvent, c::CreateConversationBody, c::UpdateConversationBody, c::SendMessageBody,
        c::DailyUsage, c::DailyUsageList,
        b::Plan, b::PlanList, b::Usage, b::Subscription, b::BillingInterval, b::CheckoutBody,
        b::CheckoutSession, b::PortalSession, b::CancelBody, b::Invoice, b::InvoicePage, b::Payment,
        b::PaymentPage, w::WebhookReceived,
        n::SignupDay, n::SignupList, n::PlanCount, n::PlanCountList, n::UserUsage, n::UserUsageList,
        n::ModelUsage, n::ModelUsageList, n::PlanSubscriptions, n::PlanSubscriptionList, n::Mrr,
        n::TopUser, n::TopUserList, n::ConversationLength, n::OverdueInvoice, n::OverdueInvoiceList,
        n::LifetimeValue, n::LifetimeValueList, n::DailyPoint, n::DailySeries,
    )),
    modifiers(&BearerAuth, &Problems),
    tags(
        (name = "accounts", description = "Sign-up, log-in, tokens, profile, sessions and API keys"),
        (name = "chat", description = "Models, conversations, messages, streamed replies, and the caller's usage per day"),
        (name = "billing", description = "Plans, this month's usage, the subscription (Stripe Checkout, the Billing Portal, cancel, resume), invoices and payments"),
        (name = "webhooks", description = "Deliveries from third parties (Stripe), verified by their signature"),
        (name = "analytics", description = "The operators' figures (role admin only; others 403): JSON, or with `Accept: text/csv` a CSV attachment of the same rows"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        // The browser's refresh token (crate::session_cookie): read by
        // refresh and logout, with `X-Requested-With: aichat`.
        components.add_security_scheme(
            "refreshCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::session_cookie::NAME,
                "The refresh token, `HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth`, set on log-in and refresh with `X-Session-Cookie: 1`. Calls that use it must send `X-Requested-With: aichat` (else 403 `csrf`).",
            ))),
        );
    }
}

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Makes every operation's error answers exact: each non-2xx response is an
/// `application/problem+json` [`ProblemBody`](crate::problem::ProblemBody),
/// and the answers any operation of a kind can give are declared once here
/// rather than on each handler: the body refusals (400, 413, 415) where there
/// is a JSON body, 401 where a token is required, and 500/503 on every API
/// operation (they all call a service). A 429 carries `Retry-After`.
struct Problems;

impl Modify for Problems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                declare_problems(operation);
            }
        }
    }
}

fn declare_problems(operation: &mut Operation) {
    let mut shared: Vec<(&str, &str)> = vec![
        ("500", "`internal`"),
        (
            "503",
            "`unavailable`: a service behind the gateway is down; try again shortly",
        ),
    ];
    if operation.request_body.is_some() {
        shared.extend([
            (
                "400",
                "`malformed_body`: not JSON, or a field of the wrong type",
            ),
            ("413", "`payload_too_large`"),
            (
                "415",
                "`unsupported_media_type`: the body must be `application/json`",
            ),
        ]);
    }
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        shared.push(("401", "`unauthorized` (no token) or `invalid_token`"));
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in shared {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(Response::new(description)));
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if status.starts_with('2') || status.starts_with('3') {
            continue;
        }
        response.content.clear();
        response.content.insert(
            PROBLEM_JSON.to_owned(),
            Content::new(Some(Ref::from_schema_name("Problem"))),
        );
        if status == "429" {
            response.headers.insert(
                "Retry-After".to_owned(),
                Header::new(Object::with_type(Type::Integer)),
            );
        }
    }
}

/// The methods each path of the document answers, for the `Allow` header
/// of a 405.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    static ALLOWED: LazyLock<BTreeMap<String, String>> = LazyLock::new(|| {
        ApiDoc::openapi()
            .paths
            .paths
            .into_iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(method, present)| present.then_some(method))
                .collect::<Vec<_>>()
                .join(", ");
                (path, methods)
            })
            .collect()
    });
    ALLOWED.get(path).map(String::as_str)
}
