//! The users area over HTTP: my account (`/api/v1/me...`), public profiles, settings, blocks,
//! phone, consent and export. Handlers parse, call `UsersService`, answer; the rules are in
//! `jiebanke_chat_core::users`.

use crate::api::{Page, PageQuery};
use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::{AccountOwner, AuthUser, RestState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use jiebanke_chat_core::users::rules::{ProfileInput, SettingsInput};
use jiebanke_chat_core::users::{Account, Export, Profile, Settings, UsersService};
use jiebanke_chat_core::UserId;
use jiebanke_gateway::frame::WireMessage;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(me, patch_me, erase))
        .routes(routes!(user))
        .routes(routes!(settings, patch_settings))
        .routes(routes!(blocks))
        .routes(routes!(block, unblock))
        .routes(routes!(set_phone))
        .routes(routes!(consent))
        .routes(routes!(export))
        .routes(routes!(report_user))
        .routes(routes!(search))
        .routes(routes!(appeal))
}

/// My own account, as only I see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeBody {
    pub id: String,
    pub nickname: String,
    pub avatar_url: Option<String>,
    /// `female`, `male`, `other` or `unspecified`.
    pub gender: String,
    pub birth_year: Option<u16>,
    pub bio: String,
    pub tags: Vec<String>,
    /// The login provider: `wechat` or `dev`.
    pub provider: String,
    pub created_at: i64,
    pub last_seen: Option<i64>,
    /// My staff role: `none`, `operator` or `admin`.
    pub role: String,
    /// Masked (`138****5678`); the clear number is only in the export.
    pub phone: Option<String>,
}

impl From<&Account> for MeBody {
    fn from(a: &Account) -> Self {
        let p = &a.profile;
        MeBody {
            id: p.id.to_string(),
            nickname: p.nickname.clone(),
            avatar_url: p.avatar_url.clone(),
            gender: p.gender.as_str().to_owned(),
            birth_year: p.birth_year,
            bio: p.bio.clone(),
            tags: p.tags.clone(),
            provider: a.provider.clone(),
            created_at: p.created_at,
            last_seen: a.last_seen,
            role: a.role.as_str().to_owned(),
            phone: a.phone_masked.clone(),
        }
    }
}

/// Where I stand with the privacy policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrivacyBody {
    /// The current policy version (`JBK_PRIVACY_VERSION`).
    pub version: String,
    /// Whether I accepted that version.
    pub accepted: bool,
    /// The version I last accepted, and when.
    pub accepted_version: Option<String>,
    pub accepted_at: Option<i64>,
}

impl PrivacyBody {
    pub fn of(users: &UsersService, a: &Account) -> Self {
        PrivacyBody {
            version: users.privacy_version().to_owned(),
            accepted: users.consented(a),
            accepted_version: a.consent.as_ref().map(|c| c.version.clone()),
            accepted_at: a.consent.as_ref().map(|c| c.at),
        }
    }
}

/// Anyone's public profile: no personal data, no presence.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileBody {
    pub id: String,
    pub nickname: String,
    pub avatar_url: Option<String>,
    pub gender: String,
    pub birth_year: Option<u16>,
    pub bio: String,
    pub tags: Vec<String>,
    pub created_at: i64,
    /// An erased account: only its id and the placeholder name remain.
    pub erased: bool,
}

impl From<&Profile> for ProfileBody {
    fn from(p: &Profile) -> Self {
        ProfileBody {
            id: p.id.to_string(),
            nickname: p.nickname.clone(),
            avatar_url: p.avatar_url.clone(),
            gender: p.gender.as_str().to_owned(),
            birth_year: p.birth_year,
            bio: p.bio.clone(),
            tags: p.tags.clone(),
            created_at: p.created_at,
            erased: p.erased,
        }
    }
}

/// A field that may be sent as `null` to clear it: absent is `None`, `null` is `Some(None)`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A change to my profile: only the fields sent change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMeBody {
    /// 1-32 characters.
    nickname: Option<String>,
    /// An `https://` URL or an upload's `/uploads/...` path; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    avatar_url: Option<Option<String>>,
    /// `female`, `male`, `other`, `unspecified`.
    gender: Option<String>,
    /// 1900 to this year; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    birth_year: Option<Option<i64>>,
    /// At most 500 characters.
    bio: Option<String>,
    /// At most 10, each 1-16 characters.
    tags: Option<Vec<String>>,
}

/// My account.
#[utoipa::path(get, path = "/api/v1/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = MeBody)))]
async fn me(State(state): State<RestState>, AuthUser(me): AuthUser) -> Result<Json<MeBody>, ApiError> {
    Ok(Json(MeBody::from(&state.users.account(me).await?)))
}

/// Changes my profile. Every bad field is named in `fields` (422); user-written text passes
/// the banned-word screen.
#[utoipa::path(patch, path = "/api/v1/me", tag = "users", request_body = PatchMeBody, security(("bearer" = [])),
    responses((status = 200, body = MeBody)))]
async fn patch_me(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    body: StrictJson<PatchMeBody>,
) -> Result<Json<MeBody>, ApiError> {
    let StrictJson(b) = body;
    let input = ProfileInput {
        nickname: b.nickname,
        avatar_url: b.avatar_url,
        gender: b.gender,
        birth_year: b.birth_year,
        bio: b.bio,
        tags: b.tags,
    };
    state.users.update_profile(me, input).await?;
    Ok(Json(MeBody::from(&state.users.account(me).await?)))
}

/// Erases my account (PIPL's right to deletion): the profile anonymized (`已注销用户`), phone,
/// settings, blocks and consent gone, my uploads deleted (their URLs answer 404), the messages
/// I sent made tombstones, the login identity
/// unlinked (the next login with it makes a new account). Every session of mine on every node
/// closes with 4004 `account_erased`; every token issued before is refused (401). A banned
/// identity stays banned (a banned user may erase: the ban outlives the account).
#[utoipa::path(delete, path = "/api/v1/me", tag = "users", security(("bearer" = [])),
    responses((status = 204, description = "erased")))]
async fn erase(State(state): State<RestState>, AccountOwner(me): AccountOwner) -> Result<StatusCode, ApiError> {
    state.users.erase(me, &state.uploads).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn user_path(p: Result<Path<String>, PathRejection>) -> Result<UserId, ApiError> {
    let Path(id) = p?;
    UserId::parse(&id).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such user"))
}

/// A user's public profile.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "user id")), security(("bearer" = [])),
    responses((status = 200, body = ProfileBody)))]
async fn user(
    State(state): State<RestState>,
    AuthUser(_me): AuthUser,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json<ProfileBody>, ApiError> {
    Ok(Json(ProfileBody::from(&state.users.profile(user_path(p)?).await?)))
}

/// My privacy settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsBody {
    /// Who may open a direct conversation with me: `everyone` (default), `contacts`, `nobody`.
    dm_from: String,
    /// Who may add me to a group: `everyone`, `contacts` (default), `nobody`.
    group_add_from: String,
    /// Who sees whether I am online: `everyone`, `contacts` (default), `nobody`.
    presence_to: String,
    /// Whether companion matching may propose me (default true).
    matchable: bool,
}

impl From<Settings> for SettingsBody {
    fn from(s: Settings) -> Self {
        SettingsBody {
            dm_from: s.dm_from.as_str().into(),
            group_add_from: s.group_add_from.as_str().into(),
            presence_to: s.presence_to.as_str().into(),
            matchable: s.matchable,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSettingsBody {
    dm_from: Option<String>,
    group_add_from: Option<String>,
    presence_to: Option<String>,
    matchable: Option<bool>,
}

/// My privacy settings.
#[utoipa::path(get, path = "/api/v1/me/settings", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = SettingsBody)))]
async fn settings(State(state): State<RestState>, AuthUser(me): AuthUser) -> Result<Json<SettingsBody>, ApiError> {
    Ok(Json(state.users.settings(me).await?.into()))
}

/// Changes my privacy settings (only the fields sent).
#[utoipa::path(patch, path = "/api/v1/me/settings", tag = "users", request_body = PatchSettingsBody,
    security(("bearer" = [])), responses((status = 200, body = SettingsBody)))]
async fn patch_settings(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    body: StrictJson<PatchSettingsBody>,
) -> Result<Json<SettingsBody>, ApiError> {
    let StrictJson(b) = body;
    let input = SettingsInput { dm_from: b.dm_from, group_add_from: b.group_add_from, presence_to: b.presence_to, matchable: b.matchable };
    Ok(Json(state.users.update_settings(me, input).await?.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BlockBody {
    user: String,
    created_at: i64,
}

/// Whom I blocked, by user id.
#[utoipa::path(get, path = "/api/v1/me/blocks", tag = "users", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<BlockBody>)))]
async fn blocks(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Page<BlockBody>>, ApiError> {
    let Query(q) = q?;
    let page = q.parse()?;
    let after = page.after.map(UserId::new).transpose()?;
    let list = state.users.blocks(me, after, page.limit + 1).await?;
    let items = list.iter().map(|b| BlockBody { user: b.user.to_string(), created_at: b.at }).collect();
    Ok(Json(Page::from_probe(items, page.limit, |b: &BlockBody| b.user.parse().unwrap_or(0))))
}

/// Blocks a user: no direct conversation, no sends into ours, no adding me to groups, no
/// presence, either way.
#[utoipa::path(put, path = "/api/v1/me/blocks/{user}", tag = "users",
    params(("user" = String, Path, description = "user id")), security(("bearer" = [])),
    responses((status = 204, description = "blocked")))]
async fn block(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<StatusCode, ApiError> {
    state.users.block(me, user_path(p)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a block.
#[utoipa::path(delete, path = "/api/v1/me/blocks/{user}", tag = "users",
    params(("user" = String, Path, description = "user id")), security(("bearer" = [])),
    responses((status = 204, description = "unblocked")))]
async fn unblock(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<StatusCode, ApiError> {
    state.users.unblock(me, user_path(p)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneRequest {
    /// E.164, e.g. `+8613812345678` (mainland numbers must be mobiles).
    phone: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneBody {
    /// The masked form (`138****5678`).
    phone: String,
}

/// Sets my phone number. Stored sealed (AES-256-GCM) with a blind index; answered masked. 409
/// if it belongs to another account.
#[utoipa::path(put, path = "/api/v1/me/phone", tag = "users", request_body = PhoneRequest, security(("bearer" = [])),
    responses((status = 200, body = PhoneBody)))]
async fn set_phone(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    body: StrictJson<PhoneRequest>,
) -> Result<Json<PhoneBody>, ApiError> {
    let StrictJson(b) = body;
    Ok(Json(PhoneBody { phone: state.users.set_phone(me, &b.phone).await? }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// The policy version accepted: must be the current one.
    version: String,
}

/// Records that I accepted the current privacy policy (PIPL), with its time.
#[utoipa::path(put, path = "/api/v1/me/consent", tag = "users", request_body = ConsentRequest, security(("bearer" = [])),
    responses((status = 200, body = PrivacyBody)))]
async fn consent(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    body: StrictJson<ConsentRequest>,
) -> Result<Json<PrivacyBody>, ApiError> {
    let StrictJson(b) = body;
    state.users.consent(me, &b.version).await?;
    let account = state.users.account(me).await?;
    Ok(Json(PrivacyBody::of(&state.users, &account)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportConversation {
    id: String,
    kind: String,
    title: Option<String>,
    members: Vec<String>,
    created_at: i64,
}

/// Everything stored about me.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportBody {
    /// When this export was made.
    exported_at: i64,
    account: MeBody,
    privacy: PrivacyBody,
    settings: SettingsBody,
    /// In clear: this is my own data.
    phone: Option<String>,
    blocks: Vec<BlockBody>,
    conversations: Vec<ExportConversation>,
    /// The messages I sent, by conversation and seq.
    messages: Vec<WireMessage>,
    /// Every merchant application I made, oldest first, its papers in clear.
    merchant_applications: Vec<ExportApplication>,
    /// My merchant, once an application was approved.
    merchant: Option<crate::merchants::MerchantStatusView>,
    /// The photos I uploaded, oldest first.
    uploads: Vec<crate::uploads::UploadBody>,
    /// The reports I made and the appeals I wrote, oldest first.
    filed: Vec<ExportFiled>,
    /// My orders (flowers and claims), newest first, recipients in clear.
    orders: Vec<crate::shop::orders::OrderView>,
    /// My claims of farm animals, newest first.
    claims: Vec<crate::shop::claims::ClaimView>,
    /// The reviews I wrote, newest first.
    reviews: Vec<crate::shop::reviews::ReviewView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportApplication {
    /// As the applicant sees it (papers masked).
    application: crate::merchants::ApplicationView,
    /// The papers in clear; `null` if they were cleared.
    papers: Option<crate::merchants::PapersView>,
}

/// A report I made or an appeal I wrote, and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportFiled {
    /// The moderation item's id.
    id: String,
    /// `report` or `appeal`.
    kind: String,
    /// What it is about: `message`, `user`, `profile` or `appeal`.
    subject_kind: String,
    /// The message (`conv:seq`) or the user it is about.
    subject_id: String,
    /// A report's reason (an appeal's is `ban appeal`).
    reason: String,
    /// An appeal's text as stored; `null` for a report (its excerpt is someone else's text).
    text: Option<String>,
    created_at: i64,
    /// `open` or `resolved`.
    status: String,
}

impl From<&jiebanke_chat_core::ModerationItem> for ExportFiled {
    fn from(i: &jiebanke_chat_core::ModerationItem) -> Self {
        use jiebanke_chat_core::{ModerationKind, ModerationStatus};
        ExportFiled {
            id: i.id.to_string(),
            kind: i.kind.as_str().to_owned(),
            subject_kind: i.subject.kind().to_owned(),
            subject_id: i.subject.id(),
            reason: i.reason.clone(),
            text: (i.kind == ModerationKind::Appeal).then(|| i.excerpt.clone()),
            created_at: i.created_at,
            status: match i.status {
                ModerationStatus::Open => "open",
                ModerationStatus::Resolved { .. } => "resolved",
            }
            .to_owned(),
        }
    }
}

/// Everything stored about me, as JSON (PIPL's right of access): my account, settings, phone,
/// blocks, conversations and the messages I sent, my merchant applications (papers in clear)
/// and merchant, my uploads, the reports and appeals I filed. A banned user may still export
/// (and erase).
#[utoipa::path(get, path = "/api/v1/me/export", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = ExportBody)))]
async fn export(State(state): State<RestState>, AccountOwner(me): AccountOwner) -> Result<Json<ExportBody>, ApiError> {
    let Export { account, settings, phone, blocks, conversations, messages } = state.users.export(me).await?;
    // The other areas' part of what is stored about me.
    let merchant = state.merchants.export(me).await?;
    let uploads = state.uploads.owned_by(me).await?;
    let filed = state.moderation.filed_by(me).await?;
    let (orders, claims) = crate::shop::export(&state, me).await?;
    let reviews = state.reviews.by(me).await?;
    Ok(Json(ExportBody {
        orders,
        claims,
        reviews: reviews.iter().map(Into::into).collect(),
        merchant_applications: merchant
            .applications
            .iter()
            .map(|(a, p)| ExportApplication {
                application: a.into(),
                papers: p.as_ref().map(|p| crate::merchants::PapersView { license_no: p.license_no.clone(), contact_phone: p.contact_phone.clone() }),
            })
            .collect(),
        merchant: merchant.merchant.as_ref().map(Into::into),
        uploads: uploads.iter().map(Into::into).collect(),
        filed: filed.iter().map(Into::into).collect(),
        exported_at: jiebanke_chat_core::now_ms(),
        privacy: PrivacyBody::of(&state.users, &account),
        account: MeBody::from(&account),
        settings: settings.into(),
        phone,
        blocks: blocks.iter().map(|b| BlockBody { user: b.user.to_string(), created_at: b.at }).collect(),
        conversations: conversations
            .iter()
            .map(|c| ExportConversation {
                id: c.id.to_string(),
                kind: c.kind.as_str().into(),
                title: c.title.clone(),
                members: c.members.iter().map(|m| m.to_string()).collect(),
                created_at: c.created_at,
            })
            .collect(),
        messages: messages.iter().map(WireMessage::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// Why, 1-200 characters, screened for banned words (staff read it).
    reason: String,
    /// `user` (the default: the person's behaviour) or `profile` (their nickname, bio or
    /// avatar; staff may reset it).
    #[serde(default)]
    about: Option<String>,
}

pub use crate::api::QueuedBody;

/// Reports a user to staff: a moderation item of subject `user` (their behaviour) or `profile`.
#[utoipa::path(post, path = "/api/v1/users/{id}/report", tag = "users", request_body = ReportBody,
    params(("id" = String, Path, description = "user id")),
    security(("bearer" = [])), responses((status = 201, body = QueuedBody)))]
async fn report_user(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<ReportBody>,
) -> Result<(StatusCode, Json<QueuedBody>), ApiError> {
    let user = user_path(p)?;
    let StrictJson(b) = body;
    let (reason, about_profile) = jiebanke_chat_core::moderation::user_report(&b.reason, b.about.as_deref(), state.moderation.filter())?;
    let profile = state.users.profile(user).await?;
    if profile.erased {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such user"));
    }
    let text = format!("{} {}", profile.nickname, profile.bio);
    let item = state.moderation.report_user(me, user, reason, text.trim().to_owned(), about_profile).await?;
    Ok((StatusCode::CREATED, Json(QueuedBody { item: item.id.to_string() })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealBody {
    /// Why the ban should be lifted, 1-1000 characters.
    text: String,
}

/// A banned user appeals their ban, with the `appeal_token` of their refused login (not a
/// session token) as the bearer: a moderation item of subject `appeal` for staff. One open
/// appeal at a time (409).
#[utoipa::path(post, path = "/api/v1/appeals", tag = "users", request_body = AppealBody,
    security(("bearer" = [])), responses((status = 201, body = QueuedBody)))]
async fn appeal(
    State(state): State<RestState>,
    headers: axum::http::HeaderMap,
    body: StrictJson<AppealBody>,
) -> Result<(StatusCode, Json<QueuedBody>), ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::unauthorized("missing bearer token (the appeal_token of the refused login)"))?;
    let user = state.jwt.verify_appeal(token).map_err(|_| ApiError::unauthorized("invalid or expired appeal token"))?;
    crate::rate_check(&state.write_limiter, &user, "too many changes, retry later")?;
    let StrictJson(b) = body;
    let item = state.moderation.appeal(user, &b.text).await?;
    Ok((StatusCode::CREATED, Json(QueuedBody { item: item.id.to_string() })))
}

/// A user as staff see them when looking someone up.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffUserView {
    pub id: String,
    pub nickname: String,
    pub avatar_url: Option<String>,
    /// `wechat`, `dev` or `staff`.
    pub provider: String,
    pub role: String,
    pub banned: bool,
    pub erased: bool,
    pub created_at: i64,
    pub last_seen: Option<i64>,
    /// Masked.
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// A phone number in E.164 (`+8613812345678`: found through its blind index), a user id,
    /// or text in nicknames; 1-64 characters.
    q: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Looks users up (staff): by phone number, id or nickname; by id ascending, cursor pages.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", params(SearchQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<StaffUserView>)))]
async fn search(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<Page<StaffUserView>>, ApiError> {
    let Query(q) = q?;
    let page = crate::api::PageQuery { limit: q.limit, cursor: q.cursor }.parse()?;
    let after = page.after.map(UserId::new).transpose()?;
    let list = state.users.search(me, q.q.as_deref().unwrap_or(""), after, page.limit + 1).await?;
    let items = list
        .iter()
        .map(|a| StaffUserView {
            id: a.profile.id.to_string(),
            nickname: a.profile.nickname.clone(),
            avatar_url: a.profile.avatar_url.clone(),
            provider: a.provider.clone(),
            role: a.role.as_str().to_owned(),
            banned: a.banned,
            erased: a.profile.erased,
            created_at: a.profile.created_at,
            last_seen: a.last_seen,
            phone: a.phone_masked.clone(),
        })
        .collect();
    Ok(Json(Page::from_probe(items, page.limit, |u: &StaffUserView| u.id.parse().unwrap_or(0))))
}
