//! Login and tokens: a `LoginProvider` turns a mini-program login code into an identity (the
//! real WeChat `jscode2session`, or the dev provider where the code is the identity); `JwtKeys`
//! issues and checks the bearer tokens that REST and the WebSocket gateway accept.

pub mod routes;

use crate::error::ApiError;
use async_trait::async_trait;
use axum::http::StatusCode;
use jiebanke_chat_core::ports::TokenVerifier;
use jiebanke_chat_core::sessions::{SessionKey, SessionService, TokenClaims};
use jiebanke_chat_core::{CoreError, FieldProblem, Identity, UserId};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A login code as the mini-program sends it: 1 to 128 visible ASCII characters.
pub struct LoginCode(String);

impl LoginCode {
    /// The problem names the field `code`.
    pub fn parse(s: &str) -> Result<Self, FieldProblem> {
        if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(FieldProblem::new("code", "must be 1 to 128 visible ASCII characters"));
        }
        Ok(LoginCode(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[async_trait]
pub trait LoginProvider: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn exchange(&self, code: &LoginCode) -> Result<Identity, ApiError>;
}

/// Development login: the code itself is the identity (same code, same user). Refused at
/// start-up when `JBK_ENV=production`.
pub struct DevLogin;

#[async_trait]
impl LoginProvider for DevLogin {
    fn name(&self) -> &'static str {
        "dev"
    }
    async fn exchange(&self, code: &LoginCode) -> Result<Identity, ApiError> {
        Ok(Identity { provider: "dev", subject: code.as_str().to_owned() })
    }
}

/// The real WeChat mini-program login (`GET /sns/jscode2session`).
pub struct WeChatLogin {
    app_id: String,
    secret: Secret,
    /// `https://api.weixin.qq.com` in production; a local server in tests.
    base_url: String,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Code2Session {
    openid: Option<String>,
    #[serde(default)]
    errcode: i64,
    errmsg: Option<String>,
}

impl WeChatLogin {
    pub fn new(app_id: String, secret: Secret, base_url: String) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        WeChatLogin { app_id, secret, base_url: base_url.trim_end_matches('/').to_owned(), client }
    }
}

#[async_trait]
impl LoginProvider for WeChatLogin {
    fn name(&self) -> &'static str {
        "wechat"
    }
    async fn exchange(&self, code: &LoginCode) -> Result<Identity, ApiError> {
        let unavailable = |why: String| {
            tracing::warn!(%why, "jscode2session failed");
            ApiError::new(StatusCode::BAD_GATEWAY, "unavailable", "WeChat login is unavailable, retry later")
        };
        let resp = self
            .client
            .get(format!("{}/sns/jscode2session", self.base_url))
            .query(&[
                ("appid", self.app_id.as_str()),
                ("secret", self.secret.expose()),
                ("js_code", code.as_str()),
                ("grant_type", "authorization_code"),
            ])
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("status {}", resp.status())));
        }
        // WeChat answers JSON with a text/plain content type: parse the text.
        let text = resp.text().await.map_err(|e| unavailable(e.to_string()))?;
        code2session_outcome(&text).map_err(|e| match e {
            Code2SessionError::Api(e) => e,
            Code2SessionError::Unexpected(why) => unavailable(why),
        })
    }
}

/// Why a `jscode2session` answer gave no identity.
pub enum Code2SessionError {
    /// An answer for the client (bad code, WeChat's rate limit).
    Api(ApiError),
    /// WeChat answered something we did not expect (logged; the client gets 502).
    Unexpected(String),
}

/// Reads a `jscode2session` answer: the openid (1 to 128 visible ASCII characters), or why not.
pub fn code2session_outcome(text: &str) -> Result<Identity, Code2SessionError> {
    let body: Code2Session = serde_json::from_str(text).map_err(|e| Code2SessionError::Unexpected(e.to_string()))?;
    match (body.errcode, body.openid) {
        (0, Some(openid)) if !openid.is_empty() && openid.len() <= 128 && openid.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Identity { provider: "wechat", subject: openid })
        }
        (0, _) => Err(Code2SessionError::Unexpected("no usable openid in the answer".into())),
        // 40029: invalid code; 40163: code already used.
        (40029 | 40163, _) => Err(Code2SessionError::Api(ApiError::unauthorized("login code is invalid or used"))),
        (45011, _) => Err(Code2SessionError::Api(ApiError {
            retry_after_ms: Some(1000),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many logins, retry later")
        })),
        (code, _) => Err(Code2SessionError::Unexpected(format!("errcode {code}: {}", body.errmsg.unwrap_or_default()))),
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    /// The user id, decimal.
    sub: String,
    iat: i64,
    exp: i64,
    iss: String,
    /// The login session (`SessionKey`): session tokens carry one, appeal tokens none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
}

/// HS256 keys for bearer tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    appeal_validation: Validation,
    pub ttl: Duration,
}

const ISSUER: &str = "jiebanke";
/// The issuer of appeal tokens: a session's validation (issuer `jiebanke`) refuses them, and
/// the appeal's refuses session tokens.
const APPEAL_ISSUER: &str = "jiebanke/appeal";
/// How long a banned user may appeal with the token of one refused login.
pub const APPEAL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Clock skew allowed between nodes for `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: u64 = 5;

impl JwtKeys {
    pub fn new(secret: &Secret, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut appeal_validation = validation.clone();
        appeal_validation.set_issuer(&[APPEAL_ISSUER]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            appeal_validation,
            ttl,
        }
    }

    /// A token good only for appealing `user`'s ban (`POST /api/v1/appeals`).
    pub fn issue_appeal(&self, user: UserId) -> Result<String, ApiError> {
        let now = jiebanke_chat_core::now_ms() / 1000;
        let claims = Claims { sub: user.to_string(), iat: now, exp: now + APPEAL_TTL.as_secs() as i64, iss: APPEAL_ISSUER.into(), jti: None };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "token not issued"))
    }

    /// The user an appeal token was issued for.
    pub fn verify_appeal(&self, token: &str) -> Result<UserId, CoreError> {
        let data = decode::<Claims>(token, &self.decoding, &self.appeal_validation).map_err(|e| CoreError::Unauthorized(e.to_string()))?;
        UserId::parse(&data.claims.sub).map_err(|_| CoreError::Unauthorized("bad subject".into()))
    }

    /// A token for `user` naming `session`, and when it expires (ms). The session must be
    /// recorded (`SessionService::open`) before the token is handed out: `issue_session` does
    /// both.
    pub fn issue(&self, user: UserId, session: &SessionKey) -> Result<(String, i64), ApiError> {
        let now = jiebanke_chat_core::now_ms() / 1000;
        let exp = now + self.ttl.as_secs() as i64;
        let claims = Claims { sub: user.to_string(), iat: now, exp, iss: ISSUER.into(), jti: Some(session.as_str().to_owned()) };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "token not issued"))?;
        Ok((token, exp * 1000))
    }
}

/// Opens a login session for `user`: records it, then answers its token and when it expires.
pub async fn issue_session(jwt: &JwtKeys, sessions: &SessionService, user: UserId) -> Result<(String, i64), ApiError> {
    let session = SessionKey::random()?;
    let (token, expires_at) = jwt.issue(user, &session)?;
    sessions.open(user, &session, expires_at).await?;
    Ok((token, expires_at))
}

impl TokenVerifier for JwtKeys {
    fn verify(&self, token: &str) -> Result<TokenClaims, CoreError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| CoreError::Unauthorized(e.to_string()))?;
        // A token issued in the future was not issued by us (`nbf` is checked by the library).
        if data.claims.iat > jiebanke_chat_core::now_ms() / 1000 + LEEWAY_SECS as i64 {
            return Err(CoreError::Unauthorized("token issued in the future".into()));
        }
        let user = UserId::parse(&data.claims.sub).map_err(|_| CoreError::Unauthorized("bad subject".into()))?;
        // A token without a session could never be ended: refused (tokens issued before
        // sessions existed log in again).
        let session = SessionKey::parse(data.claims.jti.as_deref().unwrap_or(""))?;
        Ok(TokenClaims { user, session })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_forgeries_fail() {
        let keys = JwtKeys::new(&Secret::new("s3cret-s3cret-s3cret-s3cret-s3cret"), Duration::from_secs(60));
        let u = UserId::new(42).unwrap();
        let session = SessionKey::random().unwrap();
        let (t, exp) = keys.issue(u, &session).unwrap();
        assert!(exp > jiebanke_chat_core::now_ms());
        assert_eq!(keys.verify(&t).unwrap(), TokenClaims { user: u, session });
        // A token naming no session (as issued before sessions existed) is refused.
        let now = jiebanke_chat_core::now_ms() / 1000;
        let old = Claims { sub: u.to_string(), iat: now, exp: now + 60, iss: ISSUER.into(), jti: None };
        let old = encode(&Header::new(Algorithm::HS256), &old, &keys.encoding).unwrap();
        assert!(keys.verify(&old).is_err(), "a token without a session");
        let appeal = keys.issue_appeal(u).unwrap();
        assert_eq!(keys.verify_appeal(&appeal).unwrap(), u);
        assert!(keys.verify(&appeal).is_err(), "an appeal token is no session token");
        assert!(keys.verify_appeal(&t).is_err(), "a session token is no appeal token");
        let other = JwtKeys::new(&Secret::new("another-secret-another-secret-xx"), Duration::from_secs(60));
        assert!(other.verify(&t).is_err());
        assert!(keys.verify("not.a.token").is_err());
        assert!(keys.verify("").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("abc")), "Secret(***)");
    }

    #[test]
    fn login_codes() {
        assert!(LoginCode::parse("081abc").is_ok());
        assert!(LoginCode::parse("").is_err());
        assert!(LoginCode::parse("a b").is_err());
        assert!(LoginCode::parse(&"x".repeat(129)).is_err());
    }
}
