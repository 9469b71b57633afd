//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
};

use crate::{
    problem::ProblemBody,
    routes::{accounts as a, billing as b, chat as c},
};

#[derive(OpenApi)]
#[openapi(
    info(title = "AI Chat platform API", version = "1", description = "The public HTTP contract of the gateway (see API.md)."),
    paths(
        a::register, a::login, a::refresh, a::logout, a::verify_email, a::resend_verification,
        a::forgot_password, a::reset_password, a::me, a::update_me, a::change_password, a::delete_me,
        a::list_sessions, a::delete_session,
        c::models, c::create_conversation, c::list_conversations, c::get_conversation, c::update_conversation,
        c::archive, c::unarchive, c::delete_conversation, c::list_messages, c::send_message, c::delete_message,
        b::plans, b::usage,
    ),
    components(schemas(
        ProblemBody, a::User, a::UserEnvelope, a::TokenResponse, a::SessionView, a::SessionList,
        a::RegisterBody, a::LoginBody, a::RefreshBody, a::TokenBody, a::EmailBody, a::ResetPasswordBody,
        a::UpdateMeBody, a::ChangePasswordBody, a::DeleteMeBody,
        c::Model, c::ModelList, c::Conversation, c::ConversationPage, c::Message, c::MessagePage, c::Usage,
        c::SendResult, c::DoneEvent, c::CreateConversationBody, c::UpdateConversationBody, c::SendMessageBody,
        b::Plan, b::PlanList, b::Usage,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Sign-up, log-in, tokens, profile and sessions"),
        (name = "chat", description = "Models, conversations, messages and streamed replies"),
        (name = "billing", description = "Plans and this month's usage"),
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
    }
}
