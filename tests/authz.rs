//! The authorization matrix: for every route `/openapi.json` lists, the status each kind of
//! caller gets (anonymous, the user whose things they are, another user, a user that user
//! blocked, a merchant, an operator, an admin), as one table. A documented route without a row fails the test, and so
//! does a row for a route that is not documented: new routes cannot skip it.

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};

/// The callers, in the order each row runs them (the owner last, so that what others try
/// first has not been changed by the owner's own call). `merchant` is an approved merchant;
/// `operator` is a staff account logged in at the console (username, password, TOTP) and
/// `admin` a configured admin.
const ROLES: [&str; 7] = ["anon", "other", "blocked", "merchant", "operator", "admin", "user"];

struct Row {
    method: &'static str,
    path: &'static str,
    /// The body, per role (so that unique values such as phone numbers differ).
    body: Option<fn(&str, &Fixture) -> Value>,
    /// Expected status for anon, user, other, blocked, merchant, operator, admin (in that order).
    expect: [u16; 7],
}

struct Fixture {
    ids: HashMap<&'static str, String>,
    tokens: HashMap<&'static str, String>,
    /// A second session of each role, for the logout row (which ends the session it uses).
    spare: HashMap<&'static str, String>,
}

fn row(method: &'static str, path: &'static str, expect: [u16; 7]) -> Row {
    Row { method, path, body: None, expect }
}

fn with(method: &'static str, path: &'static str, body: fn(&str, &Fixture) -> Value, expect: [u16; 7]) -> Row {
    Row { method, path, body: Some(body), expect }
}

/// An application with a licence number of its own (one number, one open application): each
/// call numbers a new one.
fn application_body(_: &str, _: &Fixture) -> Value {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(100);
    let license = jiebanke_chat_core::merchants::rules::CreditCode::numbered(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    json!({"name": "矩阵花坊", "category": "florist", "license_no": license.as_str(), "contact_name": "王小花", "contact_phone": "+8613812345678"})
}

fn order_body(_: &str, f: &Fixture) -> Value {
    json!({
        "items": [{"product": f.ids["order_product"], "quantity": 1}],
        "recipient": {"name": "王小花", "phone": "+8613812345678", "address": "大理"},
        "deliver_on": f.ids["tomorrow"],
        "slot": "morning"
    })
}

fn table() -> Vec<Row> {
    //                                                                 anon user other blocked merchant operator admin
    vec![
        with("post", "/api/v1/auth/login", |r, _| json!({"code": format!("matrix-login-{r}")}), [200, 200, 200, 200, 200, 200, 200]),
        // QR login: anyone starts one and polls it; the first logged-in caller confirms it,
        // so everyone after finds it confirmed.
        row("post", "/api/v1/auth/qr", [201, 201, 201, 201, 201, 201, 201]),
        row("get", "/api/v1/auth/qr/{ticket}", [200, 200, 200, 200, 200, 200, 200]),
        row("post", "/api/v1/auth/qr/{ticket}/confirm", [401, 409, 204, 409, 409, 409, 409]),
        // Wrong credentials, whoever sends them (the working login is tests/staff.rs's).
        // A username per role: five failures of one (username, address) pair are rate limited.
        with("post", "/api/v1/auth/staff/login", |r, _| json!({"username": format!("nobody-{r}"), "password": "not a password", "totp": "000000"}), [401, 401, 401, 401, 401, 401, 401]),
        row("get", "/api/v1/me", [401, 200, 200, 200, 200, 200, 200]),
        with("patch", "/api/v1/me", |_, _| json!({"bio": "matrix"}), [401, 200, 200, 200, 200, 200, 200]),
        row("get", "/api/v1/users/{id}", [401, 200, 200, 200, 200, 200, 200]),
        row("get", "/api/v1/me/settings", [401, 200, 200, 200, 200, 200, 200]),
        with("patch", "/api/v1/me/settings", |_, _| json!({"matchable": true}), [401, 200, 200, 200, 200, 200, 200]),
        row("get", "/api/v1/me/blocks", [401, 200, 200, 200, 200, 200, 200]),
        row("put", "/api/v1/me/blocks/{user}", [401, 204, 204, 204, 204, 204, 204]),
        row("delete", "/api/v1/me/blocks/{user}", [401, 204, 204, 204, 204, 204, 204]),
        with("put", "/api/v1/me/phone", |r, _| json!({"phone": format!("+861390000000{}", ROLES.iter().position(|x| *x == r).unwrap())}), [401, 200, 200, 200, 200, 200, 200]),
        with("put", "/api/v1/me/consent", |_, _| json!({"version": "2026-11-01"}), [401, 200, 200, 200, 200, 200, 200]),
        row("get", "/api/v1/me/export", [401, 200, 200, 200, 200, 200, 200]),
        // A direct conversation with the user: the user itself is refused (not with oneself),
        // the blocked one is refused by the block.
        with("post", "/api/v1/conversations", |_, f| json!({"kind": "direct", "members": [f.ids["user"]]}), [401, 422, 200, 403, 200, 200, 200]),
        row("get", "/api/v1/conversations", [401, 200, 200, 200, 200, 200, 200]),
        row("get", "/api/v1/conversations/{id}", [401, 200, 403, 403, 403, 403, 403]),
        with("post", "/api/v1/conversations/{id}/members", |_, f| json!({"members": [f.ids["target"]]}), [401, 200, 403, 403, 403, 403, 403]),
        row("delete", "/api/v1/conversations/{id}/members/{user}", [401, 204, 403, 403, 403, 403, 403]),
        row("get", "/api/v1/conversations/{id}/messages", [401, 200, 403, 403, 403, 403, 403]),
        row("get", "/api/v1/alerts", [401, 200, 200, 200, 200, 200, 200]),
        // Another merchant's alert does not exist for them.
        row("post", "/api/v1/alerts/{id}/ack", [401, 200, 404, 404, 404, 404, 404]),
        // Merchants: anyone logged in applies once (the merchant is one already); staff review
        // (the operator decides first, so the admin finds it decided); admins suspend.
        with("post", "/api/v1/merchants/applications", application_body, [401, 201, 201, 201, 409, 201, 201]),
        row("get", "/api/v1/me/merchant", [401, 200, 200, 200, 200, 200, 200]),
        row("get", "/api/v1/admin/merchant-applications", [401, 403, 403, 403, 403, 200, 200]),
        row("get", "/api/v1/admin/merchant-applications/{id}/papers", [401, 403, 403, 403, 403, 200, 200]),
        row("post", "/api/v1/admin/merchant-applications/{id}/approve", [401, 403, 403, 403, 403, 200, 409]),
        with("post", "/api/v1/admin/merchant-applications/{id}/reject", |_, _| json!({"reason": "执照模糊"}), [401, 403, 403, 403, 403, 200, 409]),
        row("get", "/api/v1/merchants", [200, 200, 200, 200, 200, 200, 200]),
        row("get", "/api/v1/merchants/{id}", [200, 200, 200, 200, 200, 200, 200]),
        with("post", "/api/v1/admin/merchants/{id}/suspend", |_, _| json!({"reason": "投诉"}), [401, 403, 403, 403, 403, 403, 200]),
        row("post", "/api/v1/admin/merchants/{id}/reinstate", [401, 403, 403, 403, 403, 403, 200]),
        // The catalog: only an active merchant sells; everyone browses.
        with("post", "/api/v1/merchant/products", |_, _| json!({"kind": "flower", "title": "矩阵玫瑰", "price_fen": 100, "stock": 1}), [401, 403, 403, 403, 201, 403, 403]),
        row("get", "/api/v1/merchant/products", [401, 403, 403, 403, 200, 403, 403]),
        row("get", "/api/v1/products", [200, 200, 200, 200, 200, 200, 200]),
        row("get", "/api/v1/products/{id}", [200, 200, 200, 200, 200, 200, 200]),
        with("patch", "/api/v1/merchant/products/{id}", |_, _| json!({"stock": 3}), [401, 403, 403, 403, 200, 403, 403]),
        row("delete", "/api/v1/merchant/products/{id}", [401, 403, 403, 403, 204, 403, 403]),
        with("post", "/api/v1/merchant/animals", |_, _| json!({"species": "羊", "name": "矩阵", "price_fen": 100, "period_days": 30, "slots": 2}), [401, 403, 403, 403, 201, 403, 403]),
        row("get", "/api/v1/animals", [200, 200, 200, 200, 200, 200, 200]),
        row("get", "/api/v1/animals/{id}", [200, 200, 200, 200, 200, 200, 200]),
        with("post", "/api/v1/merchant-leads", |_, _| json!({"company": "矩阵农场", "contact_name": "李", "phone": "+8613912345678", "category": "farm", "city": "大理"}), [201, 201, 201, 201, 201, 201, 201]),
        row("get", "/api/v1/admin/merchant-leads", [401, 403, 403, 403, 403, 200, 200]),
        with("post", "/api/v1/admin/merchant-leads/{id}/handle", |_, _| json!({"note": "已联系"}), [401, 403, 403, 403, 403, 200, 409]),
        // Staff: operators work the moderation feed; bans, roles, the word list, the audit log
        // and test orders are the admins'.
        row("get", "/api/v1/admin/moderation", [401, 403, 403, 403, 403, 200, 200]),
        row("get", "/api/v1/admin/dashboard", [401, 403, 403, 403, 403, 200, 200]),
        row("get", "/api/v1/admin/users", [401, 403, 403, 403, 403, 200, 200]),
        with("post", "/api/v1/admin/moderation/{id}/resolve", |_, _| json!({"action": "dismiss"}), [401, 403, 403, 403, 403, 200, 409]),
        // Reports of a user (not oneself); an appeal takes only the appeal token of a refused
        // login, never a session token (the working appeal is tests/moderation_queue.rs's).
        with("post", "/api/v1/users/{id}/report", |_, _| json!({"reason": "矩阵"}), [401, 422, 201, 201, 201, 201, 201]),
        with("post", "/api/v1/appeals", |_, _| json!({"text": "请复查"}), [401, 401, 401, 401, 401, 401, 401]),
        row("delete", "/api/v1/admin/conversations/{conv}/messages/{seq}", [401, 403, 403, 403, 403, 204, 204]),
        row("put", "/api/v1/admin/users/{id}/ban", [401, 403, 403, 403, 403, 403, 204]),
        row("delete", "/api/v1/admin/users/{id}/ban", [401, 403, 403, 403, 403, 403, 204]),
        with("put", "/api/v1/admin/users/{id}/role", |_, _| json!({"role": "none"}), [401, 403, 403, 403, 403, 403, 200]),
        row("post", "/api/v1/admin/banned-words/reload", [401, 403, 403, 403, 403, 403, 200]),
        row("get", "/api/v1/admin/audit", [401, 403, 403, 403, 403, 403, 200]),
        with("post", "/api/v1/admin/staff", |_, _| json!({"username": "matrix-new-staff", "password": "matrix password 1234", "role": "operator"}), [401, 403, 403, 403, 403, 403, 201]),
        row("get", "/api/v1/admin/staff", [401, 403, 403, 403, 403, 403, 200]),
        row("post", "/api/v1/admin/staff/{id}/disable", [401, 403, 403, 403, 403, 403, 200]),
        row("post", "/api/v1/admin/staff/{id}/enable", [401, 403, 403, 403, 403, 403, 200]),
        with("post", "/api/v1/admin/orders", |_, f| json!({"merchant": f.ids["user"], "item": "玫瑰", "amount_fen": 100}), [401, 403, 403, 403, 403, 403, 201]),
        // Orders: anyone logged in orders and reads their own; another's order does not exist
        // for them. Merchants serve the orders of their products; staff read every order and
        // admins refund. Each row acts on an order of the user's made for it.
        with("post", "/api/v1/orders", order_body, [401, 201, 201, 201, 201, 201, 201]),
        row("get", "/api/v1/orders", [401, 200, 200, 200, 200, 200, 200]),
        row("get", "/api/v1/orders/{id}", [401, 200, 404, 404, 404, 404, 404]),
        row("post", "/api/v1/orders/{id}/cancel", [401, 200, 404, 404, 404, 404, 404]),
        row("post", "/api/v1/orders/{id}/pay", [401, 200, 404, 404, 404, 404, 404]),
        row("post", "/api/v1/orders/{id}/complete", [401, 200, 404, 404, 404, 404, 404]),
        with("post", "/api/v1/orders/{id}/refund", |_, _| json!({"reason": "矩阵"}), [401, 200, 404, 404, 404, 404, 404]),
        row("get", "/api/v1/merchant/orders", [401, 403, 403, 403, 200, 403, 403]),
        row("get", "/api/v1/merchant/dashboard", [401, 403, 403, 403, 200, 403, 403]),
        row("post", "/api/v1/merchant/orders/{id}/fulfil", [401, 403, 403, 403, 200, 403, 403]),
        row("post", "/api/v1/merchant/orders/{id}/refund/approve", [401, 403, 403, 403, 200, 403, 403]),
        row("post", "/api/v1/merchant/orders/{id}/refund/reject", [401, 403, 403, 403, 200, 403, 403]),
        row("get", "/api/v1/admin/orders", [401, 403, 403, 403, 403, 200, 200]),
        row("post", "/api/v1/admin/orders/{id}/refund", [401, 403, 403, 403, 403, 403, 200]),
        // WeChat Pay's callback takes no token: an unsigned one is refused in WeChat's format.
        with("post", "/api/v1/payments/wechat/notify", |_, _| json!({"id": "x"}), [401, 401, 401, 401, 401, 401, 401]),
        row("post", "/api/v1/payments/local/{payment}/confirm", [401, 204, 404, 404, 404, 404, 404]),
        // Claims: anyone logged in claims (an animal with slots enough for all); a claim is
        // its claimant's; the merchant posts updates about its animal.
        with("post", "/api/v1/animals/{id}/claims", |_, _| json!({"periods": 1}), [401, 201, 201, 201, 201, 201, 201]),
        row("get", "/api/v1/claims", [401, 200, 200, 200, 200, 200, 200]),
        row("get", "/api/v1/claims/{id}", [401, 200, 404, 404, 404, 404, 404]),
        with("post", "/api/v1/claims/{id}/renew", |_, _| json!({"periods": 1}), [401, 201, 404, 404, 404, 404, 404]),
        row("get", "/api/v1/claims/{id}/updates", [401, 200, 404, 404, 404, 404, 404]),
        with("post", "/api/v1/merchant/animals/{id}/updates", |_, _| json!({"text": "矩阵动态"}), [401, 403, 403, 403, 201, 403, 403]),
        // Reviews: the user's completed order, once; the merchant replies once; anyone reads.
        with("post", "/api/v1/orders/{id}/review", |_, _| json!({"rating": 5, "text": "矩阵"}), [401, 201, 404, 404, 404, 404, 404]),
        with("post", "/api/v1/merchant/reviews/{id}/reply", |_, _| json!({"text": "谢谢"}), [401, 404, 404, 404, 200, 404, 404]),
        row("get", "/api/v1/merchants/{id}/reviews", [200, 200, 200, 200, 200, 200, 200]),
        // Reports of content: anyone logged in but its author.
        with("post", "/api/v1/reviews/{id}/report", |_, _| json!({"reason": "矩阵"}), [401, 422, 201, 201, 201, 201, 201]),
        with("post", "/api/v1/products/{id}/report", |_, _| json!({"reason": "矩阵"}), [401, 201, 201, 201, 422, 201, 201]),
        // No body: the upload's own refusal (415) once past the token; the photo is public.
        row("post", "/api/v1/uploads", [401, 415, 415, 415, 415, 415, 415]),
        row("get", "/uploads/{file}", [200, 200, 200, 200, 200, 200, 200]),
        row("get", "/healthz", [200, 200, 200, 200, 200, 200, 200]),
        row("get", "/readyz", [200, 200, 200, 200, 200, 200, 200]),
        // Everyone logs out (a second session of theirs: the matrix goes on with the first).
        row("post", "/api/v1/auth/logout", [401, 204, 204, 204, 204, 204, 204]),
        // Last: everyone erases their own account (a banned user may too; tests/users.rs).
        row("delete", "/api/v1/me", [401, 204, 204, 204, 204, 204, 204]),
    ]
}

/// The path with its parameters filled: the user's own group, alert and message; for the
/// admin routes and blocks a sacrificial target user.
fn fill(path: &str, f: &Fixture) -> String {
    if path == "/api/v1/admin/users" {
        return format!("{path}?q=matrix");
    }
    let admin_target = path.starts_with("/api/v1/admin/users/");
    path.replace("{id}", match path {
        p if p.starts_with("/api/v1/conversations/") => &f.ids["group"],
        "/api/v1/orders/{id}" => &f.ids["order_read"],
        "/api/v1/orders/{id}/cancel" => &f.ids["order_cancel"],
        "/api/v1/orders/{id}/pay" => &f.ids["order_pay"],
        "/api/v1/orders/{id}/complete" => &f.ids["order_fulfilled"],
        "/api/v1/orders/{id}/review" => &f.ids["order_completed"],
        "/api/v1/merchant/reviews/{id}/reply" | "/api/v1/reviews/{id}/report" => &f.ids["review"],
        "/api/v1/products/{id}/report" => &f.ids["order_product"],
        "/api/v1/orders/{id}/refund" => &f.ids["order_paid"],
        "/api/v1/merchant/orders/{id}/fulfil" => &f.ids["order_paid2"],
        "/api/v1/merchant/orders/{id}/refund/approve" => &f.ids["order_refunding"],
        "/api/v1/merchant/orders/{id}/refund/reject" => &f.ids["order_refunding2"],
        "/api/v1/admin/orders/{id}/refund" => &f.ids["order_refunding3"],
        "/api/v1/animals/{id}/claims" => &f.ids["claim_animal"],
        p if p.starts_with("/api/v1/claims/") => &f.ids["claim"],
        p if p.starts_with("/api/v1/alerts/") => &f.ids["alert"],
        p if p.ends_with("/reject") => &f.ids["application2"],
        p if p.starts_with("/api/v1/admin/merchant-applications/") => &f.ids["application"],
        p if p.starts_with("/api/v1/admin/merchant-leads/") => &f.ids["lead"],
        p if p.starts_with("/api/v1/admin/staff/") => &f.ids["staff"],
        p if p.starts_with("/api/v1/admin/moderation/") => &f.ids["item"],
        p if p.starts_with("/api/v1/merchants/") || p.starts_with("/api/v1/admin/merchants/") => &f.ids["merchant"],
        p if p.starts_with("/api/v1/products/") || p.starts_with("/api/v1/merchant/products/") => &f.ids["product"],
        p if p.starts_with("/api/v1/animals/") => &f.ids["animal"],
        _ if admin_target => &f.ids["target"],
        _ => &f.ids["user"],
    })
    .replace("{user}", &f.ids["target"])
    .replace("{file}", &f.ids["file"])
    .replace("{ticket}", &f.ids["qr"])
    .replace("{conv}", &f.ids["group"])
    .replace("{seq}", "1")
    .replace("{payment}", &f.ids["payment"])
}

#[tokio::test]
async fn every_documented_route_has_its_row() {
    let Some(tdb) = TestDb::new(Db::Sqlite).await else { return };
    let words = tdb.dir.0.join("words.txt");
    std::fs::write(&words, "违禁词\n").unwrap();
    let app = spawn_app(&tdb, |c| {
        c.banned_words_file = Some(words.clone());
        c.admins = vec![("dev".into(), "matrix-admin".into())];
        // The user makes many orders for the fixture.
        c.write_rate = (std::num::NonZeroU32::new(1000).unwrap(), std::num::NonZeroU32::new(1000).unwrap());
    })
    .await;
    let (base, http) = (app.base(), &app.http);

    let user = login(http, &base, "matrix-user").await;
    let other = login(http, &base, "matrix-other").await;
    let blocked = login(http, &base, "matrix-blocked").await;
    let admin = login(http, &base, "matrix-admin").await;
    let target = login(http, &base, "matrix-target").await;
    let merchant = login(http, &base, "matrix-merchant").await;
    // The operator is a staff account, logged in at the console (username, password, TOTP).
    let operator = staff_account(http, &base, &admin.token, "matrix-operator", "operator").await;
    let staff_target = staff_account(http, &base, &admin.token, "matrix-staff-target", "operator").await;
    let applicant2 = login(http, &base, "matrix-applicant2").await;
    // The merchant applied and was approved; the target and a second applicant wait for review.
    let mut applications = Vec::new();
    for who in [&merchant, &target, &applicant2] {
        let (s, a) = post(http, format!("{base}/api/v1/merchants/applications"), &who.token, application_body("", &Fixture { ids: HashMap::new(), tokens: HashMap::new(), spare: HashMap::new() })).await;
        assert_eq!(s, 201, "{a}");
        applications.push(a["id"].as_str().unwrap().to_owned());
    }
    let (s, a) = post(http, format!("{base}/api/v1/admin/merchant-applications/{}/approve", applications[0]), &admin.token, json!({})).await;
    assert_eq!(s, 200, "{a}");
    let (s, product) = post(http, format!("{base}/api/v1/merchant/products"), &merchant.token, json!({"kind": "flower", "title": "矩阵百合", "price_fen": 990, "stock": 5})).await;
    assert_eq!(s, 201, "{product}");
    let (s, animal) = post(http, format!("{base}/api/v1/merchant/animals"), &merchant.token, json!({"species": "羊", "name": "咩咩", "price_fen": 9900, "period_days": 30, "slots": 3})).await;
    assert_eq!(s, 201, "{animal}");
    // Orders of the user's, one per row that moves one, each in the state its row needs.
    let (s, order_product) = post(http, format!("{base}/api/v1/merchant/products"), &merchant.token, json!({"kind": "flower", "title": "矩阵玫瑰", "price_fen": 100, "stock": 100})).await;
    assert_eq!(s, 201, "{order_product}");
    let (_, claim_animal) = post(http, format!("{base}/api/v1/merchant/animals"), &merchant.token, json!({"species": "鸡", "name": "矩阵", "price_fen": 100, "period_days": 7, "slots": 10})).await;
    let tomorrow = jiebanke_chat_core::matching::Day::of_ms(jiebanke_chat_core::now_ms() + 8 * 3_600_000 + 86_400_000).to_string();
    let mut ids = HashMap::from([
        ("order_product", order_product["id"].as_str().unwrap().to_owned()),
        ("claim_animal", claim_animal["id"].as_str().unwrap().to_owned()),
        ("tomorrow", tomorrow),
    ]);
    let partial = Fixture { ids: ids.clone(), tokens: HashMap::new(), spare: HashMap::new() };
    for key in ["order_read", "order_cancel", "order_pay"] {
        ids.insert(key, place_order(http, &base, &user.token, &partial).await);
    }
    let confirm = place_order(http, &base, &user.token, &partial).await;
    let (_, p) = post(http, format!("{base}/api/v1/orders/{confirm}/pay"), &user.token, json!({})).await;
    ids.insert("payment", p["payment"].as_str().unwrap().to_owned());
    for key in ["order_completed", "order_reviewed", "order_fulfilled", "order_paid", "order_paid2", "order_refunding", "order_refunding2", "order_refunding3"] {
        let id = pay_order(http, &base, &user.token, place_order(http, &base, &user.token, &partial).await).await;
        if key.starts_with("order_refunding") {
            let (s, v) = post(http, format!("{base}/api/v1/orders/{id}/refund"), &user.token, json!({"reason": "矩阵"})).await;
            assert_eq!(s, 200, "{v}");
        }
        if matches!(key, "order_fulfilled" | "order_completed" | "order_reviewed") {
            let (s, v) = post(http, format!("{base}/api/v1/merchant/orders/{id}/fulfil"), &merchant.token, json!({})).await;
            assert_eq!(s, 200, "{v}");
        }
        if matches!(key, "order_completed" | "order_reviewed") {
            let (s, v) = post(http, format!("{base}/api/v1/orders/{id}/complete"), &user.token, json!({})).await;
            assert_eq!(s, 200, "{v}");
        }
        if key == "order_reviewed" {
            let (s, v) = post(http, format!("{base}/api/v1/orders/{id}/review"), &user.token, json!({"rating": 4})).await;
            assert_eq!(s, 201, "{v}");
            ids.insert("review", v["id"].as_str().unwrap().to_owned());
        }
        ids.insert(key, id);
    }
    let (s, claimed) = post(http, format!("{base}/api/v1/animals/{}/claims", ids["claim_animal"]), &user.token, json!({"periods": 1})).await;
    assert_eq!(s, 201, "{claimed}");
    pay_order(http, &base, &user.token, claimed["order"]["id"].as_str().unwrap().to_owned()).await;
    ids.insert("claim", claimed["claim"]["id"].as_str().unwrap().to_owned());
    let r = http
        .post(format!("{base}/api/v1/merchant-leads"))
        .json(&json!({"company": "矩阵农场", "contact_name": "李", "phone": "+8613912345678", "category": "farm", "city": "大理"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let lead: Value = r.json().await.unwrap();
    let qr: Value = http.post(format!("{base}/api/v1/auth/qr")).send().await.unwrap().json().await.unwrap();
    // A moderation item to resolve: the user reports the target.
    let (s, item) = post(http, format!("{base}/api/v1/users/{}/report", target.id), &user.token, json!({"reason": "矩阵"})).await;
    assert_eq!(s, 201, "{item}");
    // The user's group (with the target in it), a message in it, an alert of theirs, a block.
    let (s, g) = post(http, format!("{base}/api/v1/conversations"), &user.token, json!({"kind":"group","title":"矩阵","members":[target.id]})).await;
    assert_eq!(s, 200, "{g}");
    let group = g["id"].as_str().unwrap().to_owned();
    let mut ws = connect(app.addr, &user.token, Proto::Json).await;
    ws.say(1, &group, "matrix-1", "hello").await;
    let (s, o) = post(http, format!("{base}/api/v1/admin/orders"), &admin.token, json!({"merchant": user.id, "item":"花","amount_fen":1})).await;
    assert_eq!(s, 201, "{o}");
    let alert = eventually_alert(http, &base, &user.token).await;
    let r = http.put(format!("{base}/api/v1/me/blocks/{}", blocked.id)).bearer_auth(&user.token).send().await.unwrap();
    assert_eq!(r.status(), 204);
    // A photo of the user's (a minimal PNG header is not enough: a real 1x1 PNG).
    let png = images::one_pixel_png();
    let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(png).file_name("p.png"));
    let r = http.post(format!("{base}/api/v1/uploads")).bearer_auth(&user.token).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let up: Value = r.json().await.unwrap();
    let file = up["url"].as_str().unwrap().trim_start_matches("/uploads/").to_owned();

    let f = Fixture {
        ids: ids
            .into_iter()
            .chain([
            ("user", user.id.clone()),
            ("target", target.id.clone()),
            ("group", group),
            ("alert", alert),
            ("file", file),
            ("merchant", merchant.id.clone()),
            ("application", applications[1].clone()),
            ("application2", applications[2].clone()),
            ("lead", lead["id"].as_str().unwrap().to_owned()),
            ("staff", staff_target.id.clone()),
            ("qr", qr["ticket"].as_str().unwrap().to_owned()),
            ("item", item["item"].as_str().unwrap().to_owned()),
            ("product", product["id"].as_str().unwrap().to_owned()),
            ("animal", animal["id"].as_str().unwrap().to_owned()),
        ])
            .collect(),
        spare: HashMap::from([
            ("user", login(http, &base, "matrix-user").await.token),
            ("other", login(http, &base, "matrix-other").await.token),
            ("blocked", login(http, &base, "matrix-blocked").await.token),
            ("admin", login(http, &base, "matrix-admin").await.token),
            ("merchant", login(http, &base, "matrix-merchant").await.token),
            ("operator", staff_account(http, &base, &admin.token, "matrix-operator2", "operator").await.token),
        ]),
        tokens: HashMap::from([
            ("user", user.token.clone()),
            ("other", other.token.clone()),
            ("blocked", blocked.token.clone()),
            ("admin", admin.token.clone()),
            ("merchant", merchant.token.clone()),
            ("operator", operator.token.clone()),
        ]),
    };

    // The table covers exactly what is documented.
    let doc: Value = http.get(format!("{base}/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in ["get", "put", "post", "delete", "patch", "head"] {
            if item.get(m).is_some() {
                documented.insert((m.to_owned(), path.clone()));
            }
        }
    }
    let rows = table();
    let in_table: BTreeSet<(String, String)> = rows.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    let missing: Vec<_> = documented.difference(&in_table).collect();
    let stale: Vec<_> = in_table.difference(&documented).collect();
    assert!(missing.is_empty(), "documented routes with no row in the matrix: {missing:?}");
    assert!(stale.is_empty(), "rows for routes that are not documented: {stale:?}");

    let order = ["anon", "user", "other", "blocked", "merchant", "operator", "admin"];
    let mut failures = Vec::new();
    for r in &rows {
        let url = format!("{base}{}", fill(r.path, &f));
        for role in ROLES {
            let want = r.expect[order.iter().position(|o| *o == role).unwrap()];
            let method = reqwest::Method::from_bytes(r.method.to_uppercase().as_bytes()).unwrap();
            let mut req = http.request(method, &url);
            let tokens = if r.path == "/api/v1/auth/logout" { &f.spare } else { &f.tokens };
            if let Some(t) = tokens.get(role) {
                req = req.bearer_auth(t);
            }
            if let Some(body) = r.body {
                req = req.json(&body(role, &f));
            }
            let resp = req.send().await.unwrap();
            let got = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            if got != want {
                failures.push(format!("{} {} as {role}: want {want}, got {got} {text}", r.method, r.path));
            }
            if got >= 400 {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if !v["code"].is_string() || !v["message"].is_string() {
                    failures.push(format!("{} {} as {role}: {got} not in the error shape: {text}", r.method, r.path));
                }
            }
        }
    }
    assert!(failures.is_empty(), "authorization matrix:\n{}", failures.join("\n"));
    drop(ws);
    app.shutdown.cancel();
}

async fn place_order(http: &reqwest::Client, base: &str, token: &str, f: &Fixture) -> String {
    let (s, o) = post(http, format!("{base}/api/v1/orders"), token, order_body("user", f)).await;
    assert_eq!(s, 201, "{o}");
    o["id"].as_str().unwrap().to_owned()
}

/// Pays an order with the local provider.
async fn pay_order(http: &reqwest::Client, base: &str, token: &str, id: String) -> String {
    let (s, p) = post(http, format!("{base}/api/v1/orders/{id}/pay"), token, json!({})).await;
    assert_eq!(s, 200, "{p}");
    let (s, v) = post(http, format!("{base}/api/v1/payments/local/{}/confirm", p["payment"].as_str().unwrap()), token, json!({})).await;
    assert_eq!(s, 204, "{v}");
    id
}

async fn eventually_alert(http: &reqwest::Client, base: &str, token: &str) -> String {
    for _ in 0..100 {
        let (_, v) = get(http, format!("{base}/api/v1/alerts"), token).await;
        if let Some(a) = v["items"][0]["alert"].as_str() {
            return a.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no alert recorded");
}

