//! The browser's refresh token: an `HttpOnly; Secure; SameSite=Strict`
//! cookie scoped to the auth paths, so that the web app's script never
//! holds the refresh token and a reload keeps the session.
//!
//! The protocol (also in the OpenAPI document and the README):
//! - a client asks for the cookie with `X-Session-Cookie: 1` on
//!   `POST /auth/login` or `POST /auth/refresh`; the answer then sets it and
//!   its JSON has no `refreshToken` (the token is in one place only);
//! - `POST /auth/refresh` whose body has no `refreshToken`, and
//!   `POST /auth/logout` without a bearer token, read the cookie; such a call
//!   must carry `X-Requested-With: aichat` (CSRF: a cross-site form cannot set
//!   a header, and a cross-origin script cannot either without a CORS
//!   preflight, which does not allow it), besides `SameSite=Strict`;
//! - a refresh by cookie always answers with the rotated cookie; a refused
//!   one and a log-out clear it (`Max-Age=0`).
//!
//! Clients of the JSON API that send neither header see nothing of this.
//! Not here: the tokens themselves (identity), the bearer check ([`crate::auth`]).

use std::time::Duration;

use actix_web::{HttpRequest, http::header};

use crate::problem::{Code, Problem};

/// The cookie's name. Not `__Host-` (that prefix demands `Path=/`).
pub const NAME: &str = "aichat_refresh";
/// Where the browser sends it: the auth endpoints only, never with chat or
/// billing calls.
pub const PATH: &str = "/api/v1/auth";
/// The request header asking for the cookie (`1`).
pub const OPT_IN_HEADER: &str = "x-session-cookie";
/// The request header every cookie-authenticated call carries.
pub const CSRF_HEADER: &str = "x-requested-with";
/// Its value.
pub const CSRF_VALUE: &str = "aichat";

/// Whether the client asked for the cookie (`X-Session-Cookie: 1`).
pub fn asked_for(req: &HttpRequest) -> bool {
    req.headers()
        .get(OPT_IN_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "1")
}

/// The refresh token the cookie carries, if any (the first one: the most
/// specific path comes first).
pub fn read(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .find_map(find)
}

/// The value of our cookie in one `Cookie` header.
fn find(cookie_header: &str) -> Option<String> {
    cookie_header.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name.trim() == NAME)
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|v| !v.is_empty())
    })
}

/// Refuses a cookie-authenticated call without `X-Requested-With: aichat`.
pub fn check_csrf(req: &HttpRequest) -> Result<(), Problem> {
    let ok = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(CSRF_VALUE));
    if ok {
        Ok(())
    } else {
        Err(Problem::new(
            Code::Csrf,
            "A call authenticated by the session cookie must carry `X-Requested-With: aichat`.",
        ))
    }
}

/// The `Set-Cookie` value that stores `token` for `max_age`.
pub fn set(token: &str, max_age: Duration) -> String {
    format!(
        "{NAME}={token}; Path={PATH}; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
        max_age.as_secs()
    )
}

/// The `Set-Cookie` value that removes it.
pub fn clear() -> String {
    format!("{NAME}=; Path={PATH}; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        assert_eq!(find("aichat_refresh=abc").as_deref(), Some("abc"));
        assert_eq!(
            find("theme=dark; aichat_refresh=abc ; x=y").as_deref(),
            Some("abc")
        );
        assert_eq!(find("aichat_refresh=\"abc\"").as_deref(), Some("abc"));
        assert_eq!(find("aichat_refresh=; x=1"), None);
        assert_eq!(find("not_aichat_refresh=abc"), None);
        assert_eq!(find("aichat_refreshx=abc"), None);
        assert_eq!(find(""), None);
    }

    #[test]
    fn set_and_clear_carry_the_same_attributes() {
        let set = set("tok", Duration::from_secs(60));
        assert_eq!(
            set,
            "aichat_refresh=tok; Path=/api/v1/auth; Max-Age=60; HttpOnly; Secure; SameSite=Strict"
        );
        assert_eq!(
            clear(),
            "aichat_refresh=; Path=/api/v1/auth; Max-Age=0; HttpOnly; Secure; SameSite=Strict"
        );
    }
}
