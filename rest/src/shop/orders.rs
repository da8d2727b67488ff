//! Orders over HTTP: buyers place, pay, cancel, complete and ask refunds of their orders
//! (`/api/v1/orders`), merchants fulfil and decide refunds (`/api/v1/merchant/orders`), staff
//! read every order and admins refund (`/api/v1/admin/orders`, in `admin`); the payment
//! callbacks (`/api/v1/payments/...`). The rules are in `jiebanke_chat_core::commerce::orders`.
//!
//! The WeChat Pay callback is the one route that does not answer the error body of the rest of
//! the API: WeChat Pay reads `{"code":"FAIL","message":…}` and a 2xx for success.

use crate::api::{Page, PageQuery};
use crate::error::ApiError;
use crate::extract::StrictJson;
use crate::{Acting, AuthUser, RestState};
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jiebanke_chat_core::commerce::orders::{OrderFilter, OrderService, ShopOrder, Viewer};
use jiebanke_chat_core::commerce::pay::{NotifyError, NotifyHeaders, PayParams};
use jiebanke_chat_core::commerce::rules::OrderInput;
use jiebanke_chat_core::commerce::OrderState;
use jiebanke_chat_core::matching::Day;
use jiebanke_chat_core::{CoreError, FieldProblem, OrderId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(place, mine))
        .routes(routes!(one))
        .routes(routes!(cancel))
        .routes(routes!(complete))
        .routes(routes!(refund))
        .routes(routes!(pay))
        .routes(routes!(merchant_orders))
        .routes(routes!(merchant_dashboard))
        .routes(routes!(fulfil))
        .routes(routes!(approve_refund))
        .routes(routes!(reject_refund))
        .routes(routes!(wechat_notify))
        .routes(routes!(local_confirm))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItemBody {
    /// A product id.
    product: String,
    /// 1-99.
    quantity: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientBody {
    /// 1-32 characters.
    name: String,
    /// E.164, e.g. `+8613812345678` (mainland mobiles checked).
    phone: String,
    /// 1-200 characters.
    address: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderBody {
    /// 1-20 lines, each product once, all of one merchant.
    items: Vec<OrderItemBody>,
    recipient: RecipientBody,
    /// `YYYY-MM-DD`, today up to 60 days ahead in the business zone.
    deliver_on: String,
    /// `morning`, `afternoon` or `evening`.
    slot: String,
    /// At most 200 characters.
    #[serde(default)]
    note: String,
}

/// One line of an order: the product as it was when ordered.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderLineView {
    pub product: String,
    pub title: String,
    pub price_fen: i64,
    pub quantity: u32,
}

/// The recipient in clear (the buyer; the merchant while the order waits to be fulfilled).
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientView {
    pub name: String,
    pub phone: String,
    pub address: String,
}

/// An order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: String,
    /// `flower`, `claim`, or `manual` (recorded by the development tool).
    pub kind: String,
    /// `created`, `paid`, `fulfilled`, `completed`, `cancelled`, `refunding`, `refunded`.
    pub state: String,
    pub merchant: String,
    pub buyer: Option<String>,
    /// A one-line summary.
    pub item: String,
    /// Integer fen, computed by the server from the products' prices.
    pub amount_fen: i64,
    pub lines: Vec<OrderLineView>,
    /// In clear only to whom it is due; else null.
    pub recipient: Option<RecipientView>,
    /// `王* 138****5678`.
    pub recipient_masked: Option<String>,
    /// `YYYY-MM-DD`.
    pub deliver_on: Option<String>,
    pub slot: Option<String>,
    pub note: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Unpaid by then, it is cancelled.
    pub expires_at: Option<i64>,
    pub paid_at: Option<i64>,
    pub refund_reason: Option<String>,
    /// A payment arrived after it was cancelled; the money was given back.
    pub late_payment: bool,
}

pub(crate) fn view(orders: &OrderService, viewer: Viewer, o: &ShopOrder) -> Result<OrderView, ApiError> {
    let recipient = if OrderService::sees_recipient(viewer, o) {
        orders.recipient(o)?.map(|r| RecipientView { name: r.name, phone: r.phone, address: r.address })
    } else {
        None
    };
    Ok(OrderView {
        id: o.id.to_string(),
        kind: o.kind.as_str().to_owned(),
        state: o.state.as_str().to_owned(),
        merchant: o.merchant.to_string(),
        buyer: o.buyer.map(|b| b.to_string()),
        item: o.item.clone(),
        amount_fen: o.amount_fen,
        lines: o.lines.iter().map(|l| OrderLineView { product: l.product.to_string(), title: l.title.clone(), price_fen: l.price_fen, quantity: l.quantity }).collect(),
        recipient,
        recipient_masked: o.recipient_masked.clone(),
        deliver_on: o.deliver_on.map(|d| Day::from_days(d as i32).to_string()),
        slot: o.slot.map(|s| s.as_str().to_owned()),
        note: o.note.clone(),
        created_at: o.created_at,
        updated_at: o.updated_at,
        expires_at: o.expires_at,
        paid_at: o.paid_at,
        refund_reason: o.refund_reason.clone(),
        late_payment: o.late_paid_at.is_some(),
    })
}

pub(crate) fn page(orders: &OrderService, viewer: Viewer, list: Vec<ShopOrder>, limit: u32) -> Result<Page<OrderView>, ApiError> {
    let items = list.iter().map(|o| view(orders, viewer, o)).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_probe(items, limit, |o: &OrderView| o.id.parse().unwrap_or(0)))
}

fn order_path(p: Result<Path<String>, PathRejection>) -> Result<OrderId, ApiError> {
    let Path(id) = p?;
    id.parse::<i64>().ok().and_then(|v| OrderId::new(v).ok()).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such order"))
}

/// A state filter's wire name, checked.
pub(crate) fn state_filter(raw: Option<&str>) -> Result<Option<&'static str>, ApiError> {
    match raw {
        None => Ok(None),
        Some(s) => OrderState::ALL.into_iter().map(OrderState::as_str).find(|n| *n == s).map(Some).ok_or_else(|| {
            CoreError::Fields(vec![FieldProblem::new("state", "must be created, paid, fulfilled, completed, cancelled, refunding or refunded")]).into()
        }),
    }
}

/// Places a flower order: the amount is computed from the products' prices, the stock taken at
/// once (409 `out_of_stock` if not enough is left); unpaid after `JBK_ORDER_PAY_TIMEOUT_MS` it
/// is cancelled and the stock returned. Every bad field named; texts screened.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = PlaceOrderBody,
    security(("bearer" = [])), responses((status = 201, body = OrderView)))]
async fn place(State(state): State<RestState>, AuthUser(me): AuthUser, body: StrictJson<PlaceOrderBody>) -> Result<(StatusCode, Json<OrderView>), ApiError> {
    let StrictJson(b) = body;
    // An id that is not one becomes 0, which the rules name with every other bad field.
    let items = b.items.iter().map(|it| (it.product.parse::<i64>().ok().filter(|_| it.product.bytes().all(|c| c.is_ascii_digit())).unwrap_or(0), it.quantity)).collect();
    let input = OrderInput {
        items,
        recipient_name: b.recipient.name,
        recipient_phone: b.recipient.phone,
        address: b.recipient.address,
        deliver_on: b.deliver_on,
        slot: b.slot,
        note: b.note,
    };
    let o = state.orders.place(me, input).await?;
    Ok((StatusCode::CREATED, Json(view(&state.orders, Viewer::Buyer(me), &o)?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// One state: `created`, `paid`, `fulfilled`, `completed`, `cancelled`, `refunding`,
    /// `refunded`.
    state: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// My orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(OrdersQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<OrderView>)))]
async fn mine(State(state): State<RestState>, AuthUser(me): AuthUser, q: Result<Query<OrdersQuery>, QueryRejection>) -> Result<Json<Page<OrderView>>, ApiError> {
    let Query(q) = q?;
    let filter = OrderFilter { buyer: Some(me), state: state_filter(q.state.as_deref())?, ..OrderFilter::default() };
    let p = PageQuery { limit: q.limit, cursor: q.cursor }.parse()?;
    let list = state.orders.list(&filter, p.after, p.limit + 1).await?;
    Ok(Json(page(&state.orders, Viewer::Buyer(me), list, p.limit)?))
}

/// One of my orders.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = String, Path, description = "order id")),
    security(("bearer" = [])), responses((status = 200, body = OrderView)))]
async fn one(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<Json<OrderView>, ApiError> {
    let o = state.orders.get(Viewer::Buyer(me), order_path(p)?).await?;
    Ok(Json(view(&state.orders, Viewer::Buyer(me), &o)?))
}

/// Cancels my unpaid order; its stock goes back. 409 with `state` if it is not `created`.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", params(("id" = String, Path, description = "order id")),
    security(("bearer" = [])), responses((status = 200, body = OrderView)))]
async fn cancel(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<Json<OrderView>, ApiError> {
    let o = state.orders.cancel(me, order_path(p)?).await?;
    Ok(Json(view(&state.orders, Viewer::Buyer(me), &o)?))
}

/// Confirms that my fulfilled order arrived.
#[utoipa::path(post, path = "/api/v1/orders/{id}/complete", tag = "orders", params(("id" = String, Path, description = "order id")),
    security(("bearer" = [])), responses((status = 200, body = OrderView)))]
async fn complete(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<Json<OrderView>, ApiError> {
    let o = state.orders.complete(me, order_path(p)?).await?;
    Ok(Json(view(&state.orders, Viewer::Buyer(me), &o)?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// 1-200 characters.
    reason: String,
}

/// Asks for my paid or fulfilled order's money back (the whole order); the merchant or an
/// admin decides.
#[utoipa::path(post, path = "/api/v1/orders/{id}/refund", tag = "orders", params(("id" = String, Path, description = "order id")),
    request_body = RefundBody, security(("bearer" = [])), responses((status = 200, body = OrderView)))]
async fn refund(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    p: Result<Path<String>, PathRejection>,
    body: StrictJson<RefundBody>,
) -> Result<Json<OrderView>, ApiError> {
    let id = order_path(p)?;
    let StrictJson(b) = body;
    let o = state.orders.request_refund(me, id, &b.reason).await?;
    Ok(Json(view(&state.orders, Viewer::Buyer(me), &o)?))
}

/// What the client needs to pay: WeChat Pay's five `wx.requestPayment` fields, or the local
/// provider's payment id (development).
#[derive(Debug, Serialize, ToSchema)]
pub struct PayAnswer {
    /// `wechat` or `local`.
    pub provider: String,
    /// The local provider's payment, for `POST /api/v1/payments/local/{payment}/confirm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<String>,
    #[serde(rename = "timeStamp", skip_serializing_if = "Option::is_none")]
    pub time_stamp: Option<String>,
    #[serde(rename = "nonceStr", skip_serializing_if = "Option::is_none")]
    pub nonce_str: Option<String>,
    /// `prepay_id=…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// `RSA`.
    #[serde(rename = "signType", skip_serializing_if = "Option::is_none")]
    pub sign_type: Option<String>,
    #[serde(rename = "paySign", skip_serializing_if = "Option::is_none")]
    pub pay_sign: Option<String>,
}

impl From<PayParams> for PayAnswer {
    fn from(p: PayParams) -> Self {
        match p {
            PayParams::Wechat { time_stamp, nonce_str, package, sign_type, pay_sign } => PayAnswer {
                provider: "wechat".into(),
                payment: None,
                time_stamp: Some(time_stamp),
                nonce_str: Some(nonce_str),
                package: Some(package),
                sign_type: Some(sign_type),
                pay_sign: Some(pay_sign),
            },
            PayParams::Local { payment } => PayAnswer {
                provider: "local".into(),
                payment: Some(payment),
                time_stamp: None,
                nonce_str: None,
                package: None,
                sign_type: None,
                pay_sign: None,
            },
        }
    }
}

/// Starts paying my order (it must be `created` and not expired): the provider's parameters.
#[utoipa::path(post, path = "/api/v1/orders/{id}/pay", tag = "orders", params(("id" = String, Path, description = "order id")),
    security(("bearer" = [])), responses((status = 200, body = PayAnswer)))]
async fn pay(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<Json<PayAnswer>, ApiError> {
    Ok(Json(state.orders.pay(me, order_path(p)?).await?.into()))
}

async fn merchant_viewer(state: &RestState, me: UserId) -> Result<Viewer, ApiError> {
    if state.merchants.is_merchant(me).await? {
        Ok(Viewer::Merchant(me))
    } else {
        Err(CoreError::Forbidden("only merchants have orders to serve".into()).into())
    }
}

/// Orders of my products, newest first (merchants; the recipient in clear while an order waits
/// to be fulfilled).
#[utoipa::path(get, path = "/api/v1/merchant/orders", tag = "orders", params(OrdersQuery),
    security(("bearer" = [])), responses((status = 200, body = Page<OrderView>)))]
async fn merchant_orders(State(state): State<RestState>, AuthUser(me): AuthUser, q: Result<Query<OrdersQuery>, QueryRejection>) -> Result<Json<Page<OrderView>>, ApiError> {
    let viewer = merchant_viewer(&state, me).await?;
    let Query(q) = q?;
    let filter = OrderFilter { merchant: Some(me), state: state_filter(q.state.as_deref())?, ..OrderFilter::default() };
    let p = PageQuery { limit: q.limit, cursor: q.cursor }.parse()?;
    let list = state.orders.list(&filter, p.after, p.limit + 1).await?;
    Ok(Json(page(&state.orders, viewer, list, p.limit)?))
}

/// How many of my orders are in one state.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateCount {
    pub state: String,
    pub orders: u64,
}

/// One business day's takings.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayRevenue {
    /// `YYYY-MM-DD` in the business zone.
    pub day: String,
    /// What was paid that day and not refunded since, fen.
    pub revenue_fen: i64,
    pub orders: u64,
}

/// A merchant's dashboard.
#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantDashboardView {
    /// Every state with its count, zeros included.
    pub orders_by_state: Vec<StateCount>,
    /// The last 30 business days, oldest first (today last).
    pub revenue_by_day: Vec<DayRevenue>,
    /// The average of the reviews' stars, one decimal; null without reviews.
    pub rating: Option<f64>,
    pub reviews: i64,
    /// Order alerts not acked yet.
    pub unacked_alerts: u64,
}

/// My shop at a glance (merchants): orders by state, revenue by day for 30 days, rating, alerts
/// waiting for an ack.
#[utoipa::path(get, path = "/api/v1/merchant/dashboard", tag = "orders",
    security(("bearer" = [])), responses((status = 200, body = MerchantDashboardView)))]
async fn merchant_dashboard(State(state): State<RestState>, AuthUser(me): AuthUser) -> Result<Json<MerchantDashboardView>, ApiError> {
    merchant_viewer(&state, me).await?;
    let d = state.orders.merchant_dashboard(me).await?;
    Ok(Json(MerchantDashboardView {
        orders_by_state: d.by_state.into_iter().map(|(s, n)| StateCount { state: s.to_owned(), orders: n }).collect(),
        revenue_by_day: d.revenue.into_iter().map(|(day, fen, n)| DayRevenue { day, revenue_fen: fen, orders: n }).collect(),
        rating: d.rating,
        reviews: d.reviews,
        unacked_alerts: d.unacked_alerts,
    }))
}

/// Marks my paid order delivered (merchants).
#[utoipa::path(post, path = "/api/v1/merchant/orders/{id}/fulfil", tag = "orders", params(("id" = String, Path, description = "order id")),
    security(("bearer" = [])), responses((status = 200, body = OrderView)))]
async fn fulfil(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<Json<OrderView>, ApiError> {
    let viewer = merchant_viewer(&state, me).await?;
    let o = state.orders.fulfil(me, order_path(p)?).await?;
    Ok(Json(view(&state.orders, viewer, &o)?))
}

/// Approves a refund of my order: the money goes back through the payment provider; the stock
/// too if it was not delivered.
#[utoipa::path(post, path = "/api/v1/merchant/orders/{id}/refund/approve", tag = "orders", params(("id" = String, Path, description = "order id")),
    security(("bearer" = [])), responses((status = 200, body = OrderView)))]
async fn approve_refund(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<Json<OrderView>, ApiError> {
    let viewer = merchant_viewer(&state, me).await?;
    let o = state.orders.decide_refund(viewer, order_path(p)?, true).await?;
    Ok(Json(view(&state.orders, viewer, &o)?))
}

/// Rejects a refund of my order: it goes back to the state it was in.
#[utoipa::path(post, path = "/api/v1/merchant/orders/{id}/refund/reject", tag = "orders", params(("id" = String, Path, description = "order id")),
    security(("bearer" = [])), responses((status = 200, body = OrderView)))]
async fn reject_refund(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<Json<OrderView>, ApiError> {
    let viewer = merchant_viewer(&state, me).await?;
    let o = state.orders.decide_refund(viewer, order_path(p)?, false).await?;
    Ok(Json(view(&state.orders, viewer, &o)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminOrdersQuery {
    /// One state (as in `GET /api/v1/orders`).
    pub state: Option<String>,
    /// One merchant's orders (its id).
    pub merchant: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every order, newest first (staff), by state and merchant.
pub(crate) async fn admin_list(state: &RestState, me: UserId, q: AdminOrdersQuery) -> Result<Page<OrderView>, ApiError> {
    let viewer = state.orders.staff_viewer(me).await?;
    let merchant = match q.merchant.as_deref() {
        Some(m) => Some(UserId::parse(m).map_err(|_| CoreError::Fields(vec![FieldProblem::new("merchant", "must be a merchant id")]))?),
        None => None,
    };
    let filter = OrderFilter { merchant, state: state_filter(q.state.as_deref())?, ..OrderFilter::default() };
    let p = PageQuery { limit: q.limit, cursor: q.cursor }.parse()?;
    let list = state.orders.list(&filter, p.after, p.limit + 1).await?;
    page(&state.orders, viewer, list, p.limit)
}

/// An admin refunds an order whose refund was asked (audited).
pub(crate) async fn admin_refund(state: &RestState, acting: Acting, p: Result<Path<String>, PathRejection>) -> Result<OrderView, ApiError> {
    let id = order_path(p)?;
    let o = state.orders.admin_refund(&acting.0, id).await?;
    view(&state.orders, Viewer::Staff { user: acting.0.user, admin: true }, &o)
}

/// WeChat Pay's answer format (the callback's only).
#[derive(Debug, Serialize, ToSchema)]
pub struct WechatAnswer {
    /// `FAIL`.
    pub code: String,
    pub message: String,
}

fn fail(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(WechatAnswer { code: "FAIL".into(), message: message.into() })).into_response()
}

/// Verifies, opens and applies a payment callback: the one path of WeChat Pay's callbacks and
/// the local provider's. 204 when applied (or already applied), 401 on a bad signature, 4xx
/// for anything else refused (nothing changes), 500 when it should come again.
pub(crate) async fn handle_notify(state: &RestState, headers: &NotifyHeaders, body: &[u8]) -> Response {
    let now_secs = jiebanke_chat_core::now_ms() / 1000;
    let notice = match state.orders.provider().open_notification(headers, body, now_secs) {
        Ok(n) => n,
        Err(e) => {
            state.orders.stats.count_refusal(&e);
            tracing::warn!(reason = e.code(), "payment callback refused");
            let status = if e == NotifyError::BadSignature { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
            return fail(status, e.to_string());
        }
    };
    match state.orders.payment_notice(&notice).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(CoreError::NotFound(m)) => fail(StatusCode::NOT_FOUND, m),
        Err(CoreError::Unavailable(_)) => fail(StatusCode::INTERNAL_SERVER_ERROR, "temporarily unavailable, send again"),
        Err(e) => fail(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// WeChat Pay's payment and refund callback: verified with the platform key named by
/// `Wechatpay-Serial` over `timestamp\nnonce\nbody\n` (at most five minutes off), the resource
/// decrypted with the APIv3 key, then the order, its amount and state checked. Answers in
/// WeChat Pay's format (`{"code":"FAIL","message"}`), not the API's error body.
#[utoipa::path(post, path = "/api/v1/payments/wechat/notify", tag = "payments",
    request_body(content = String, description = "WeChat Pay's callback, signed and encrypted", content_type = "application/json"),
    responses((status = 204, description = "applied (or applied before)"),
        (status = 401, description = "bad signature", body = WechatAnswer),
        (status = 400, description = "refused", body = WechatAnswer),
        (status = 404, description = "no such order", body = WechatAnswer)))]
async fn wechat_notify(State(state): State<RestState>, headers: HeaderMap, body: Result<Bytes, axum::extract::rejection::BytesRejection>) -> Response {
    // A body over the limit (or one that could not be read) is answered in WeChat Pay's shape
    // too, never the framework's plain text.
    let body = match body {
        Ok(b) => b,
        Err(e) => return fail(e.status(), e.body_text()),
    };
    let h = NotifyHeaders {
        serial: header(&headers, "wechatpay-serial"),
        signature: header(&headers, "wechatpay-signature"),
        timestamp: header(&headers, "wechatpay-timestamp"),
        nonce: header(&headers, "wechatpay-nonce"),
    };
    handle_notify(&state, &h, &body).await
}

/// The local provider (development only): the buyer "pays" their order. The provider builds
/// the callback exactly as WeChat Pay would (signed with its platform key, the resource
/// encrypted with its APIv3 key) and hands it to the callback's handler, the same verification
/// path. Confirming twice pays once. 404 when the local provider is not in use.
#[utoipa::path(post, path = "/api/v1/payments/local/{payment}/confirm", tag = "payments",
    params(("payment" = String, Path, description = "the `payment` of `POST /api/v1/orders/{id}/pay`")),
    security(("bearer" = [])), responses((status = 204, description = "paid")))]
async fn local_confirm(State(state): State<RestState>, AuthUser(me): AuthUser, p: Result<Path<String>, PathRejection>) -> Result<Response, ApiError> {
    let Path(payment) = p?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such payment");
    let local = state.local_pay.clone().ok_or_else(not_found)?;
    let id = jiebanke_chat_core::commerce::orders::order_of_trade(&payment).ok_or_else(not_found)?;
    let order = state.orders.get(Viewer::Buyer(me), id).await.map_err(|_| not_found())?;
    // The transaction id is the payment's own, so a second confirm is the same payment again.
    let trade = order.out_trade_no();
    let paid = jiebanke_payments::local::LocalPayment {
        transaction_id: format!("LOCAL{trade}"),
        out_trade_no: trade,
        amount_total: order.amount_fen,
        trade_state: "SUCCESS".into(),
    };
    let (headers, body) = local.notification(&paid, jiebanke_chat_core::now_ms() / 1000)?;
    let answer = handle_notify(&state, &headers, &body).await;
    if answer.status() == StatusCode::NO_CONTENT {
        Ok(answer)
    } else {
        Err(ApiError::new(StatusCode::CONFLICT, "conflict", "the payment was not taken"))
    }
}
