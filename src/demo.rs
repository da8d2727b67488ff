//! `jiebanke demo`: fills the configured store with a small, believable world, so that a
//! newcomer who then runs `jiebanke serve` and logs in as `alice` sees a living product: six
//! travellers with profiles, a group chat and two direct conversations with unread messages, a
//! flower shop and a farm approved by an admin, orders in every common state, a review with the
//! merchant's reply, an active animal claim with the farm's updates, and an order alert the
//! florist has not acked yet.
//!
//! Everything goes through the real code paths, as a client would: the server is built exactly
//! as `serve` builds it (listening on 127.0.0.1:0 for the run), REST requests go through its
//! router in process, messages and read positions through its WebSocket gateway (a message is
//! acked once it is stored), payments through the local provider's confirm route (the same
//! callback verification as WeChat Pay's). No SQL is written here.
//!
//! Re-running is safe: the last step fills in alice's profile, and a store where alice has the
//! demo's bio holds the whole demo and is left alone. A store where the demo's users have data
//! but not that (an interrupted run, or the codes used by hand) is refused before anything is
//! written (only alice's and flora's plain accounts exist then, made by their logins); the demo's
//! admin logs in, and is made one, only after that check.

use crate::config::{Config, Environment};
use crate::Application;
use anyhow::{bail, Context};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tower_service::Service;

/// The demo's admin identity (dev login code); it approves the two merchants.
pub const ADMIN_CODE: &str = "demo-admin";
const ADMIN_NICKNAME: &str = "演示管理员";
/// The group chat's title.
pub const GROUP_TITLE: &str = "云南行 · 大理洱海";

/// A traveller of the demo world.
pub struct Traveller {
    /// The dev login code, which is the identity.
    pub code: &'static str,
    pub nickname: &'static str,
    gender: &'static str,
    birth_year: i64,
    bio: &'static str,
    tags: &'static [&'static str],
}

pub const TRAVELLERS: [Traveller; 6] = [
    Traveller { code: "alice", nickname: "小艾", gender: "female", birth_year: 1996, bio: "上海上班族，攒了年假去大理住一周。爱拍照，爱喝咖啡，想慢慢走一圈洱海。", tags: &["摄影", "徒步", "咖啡"] },
    Traveller { code: "bob", nickname: "阿博", gender: "male", birth_year: 1993, bio: "程序员，骑行五年。这次计划环洱海骑一圈，欢迎同行！", tags: &["骑行", "美食", "户外"] },
    Traveller { code: "carol", nickname: "卡萝", gender: "female", birth_year: 1998, bio: "插画师，喜欢古镇、扎染和一切手作。", tags: &["古镇", "手作", "插画"] },
    Traveller { code: "dave", nickname: "大伟", gender: "male", birth_year: 1990, bio: "自驾老司机，车上还能坐三个人，油费 AA。", tags: &["自驾", "露营", "星空"] },
    Traveller { code: "erin", nickname: "艾琳", gender: "female", birth_year: 2001, bio: "刚毕业的背包客，预算有限，拼车拼房都可以。", tags: &["背包客", "穷游", "青旅"] },
    Traveller { code: "frank", nickname: "老方", gender: "male", birth_year: 1968, bio: "退休的地理老师，在大理住了一个月，爱看山看云，会讲点苍山洱海的来历。", tags: &["摄影", "慢旅行", "地理"] },
];
const ALICE: usize = 0;
const BOB: usize = 1;
const CAROL: usize = 2;
const DAVE: usize = 3;
const ERIN: usize = 4;
const FRANK: usize = 5;

/// A merchant of the demo world: a user who applied and was approved.
pub struct Shop {
    pub code: &'static str,
    pub nickname: &'static str,
    /// The merchant's public name.
    pub name: &'static str,
    /// `florist` or `farm`.
    pub category: &'static str,
    bio: &'static str,
    /// A unified social credit code with a right check character (made up).
    license_no: &'static str,
    contact_name: &'static str,
    contact_phone: &'static str,
}

pub const FLORIST: Shop = Shop {
    code: "flora",
    nickname: "花坊·小花",
    name: "洱海花坊",
    category: "florist",
    bio: "大理古城人民路上的小花店，云南当天鲜切花，古城内两小时送达。",
    license_no: "92532901MA6K7XH2PY",
    contact_name: "王小花",
    contact_phone: "+8613988721024",
};

pub const FARM: Shop = Shop {
    code: "farmer",
    nickname: "牧场·李大哥",
    name: "苍山脚下生态牧场",
    category: "farm",
    bio: "苍山脚下的家庭牧场，散养羊、猪和奶牛，欢迎认领，每周更新近况。",
    license_no: "91532901MA6N3QDT8A",
    contact_name: "李大山",
    contact_phone: "+8615987265310",
};

/// The florist's products: title, description, price in fen, stock, picture.
const PRODUCTS: [(&str, &str, i64, i64, Picture); 5] = [
    ("红玫瑰 11 枝 · 云南鲜切", "斗南花市当天到货的卡罗拉红玫瑰，配尤加利叶，牛皮纸包装。", 19900, 20, Picture::ROSE),
    ("向日葵 3 枝", "明黄向日葵配小雏菊，送给刚认识的旅伴正合适。", 6900, 30, Picture::SUNFLOWER),
    ("香水百合 5 枝", "西伯利亚香水百合，含苞发货，能开一周。", 12800, 15, Picture::LILY),
    ("满天星花束", "云南白色满天星一大束，也可以做成干花带回家。", 8800, 25, Picture::BABY_BREATH),
    ("洱海蓝 · 绣球花束", "蓝色绣球配白玫瑰，像洱海的颜色。", 15800, 10, Picture::HYDRANGEA),
];
const ROSE: usize = 0;
const SUNFLOWER: usize = 1;
const LILY: usize = 2;
const HYDRANGEA: usize = 4;

/// The farm's animals: species, name, story, price per period in fen, period days, slots,
/// picture.
const ANIMALS: [(&str, &str, &str, i64, i64, i64, Picture); 3] = [
    ("羊", "棉花糖", "两岁的小母羊，性格温顺，最爱吃苍山脚下的嫩草。认领期间每周更新照片和近况。", 29900, 30, 5, Picture::SHEEP),
    ("小猪", "乐乐", "散养的黑土猪，每天在果园里拱土找吃的。认领期满可以来牧场看它。", 19900, 30, 8, Picture::PIG),
    ("奶牛", "大黄", "黄白花的奶牛，每天产奶二十多斤。认领一季，每月寄两箱鲜奶到家。", 59900, 90, 3, Picture::COW),
];

/// The group chat, in order: who says what (indexes into `TRAVELLERS`). Alice's last line is
/// the 15th of 21, so she has 6 unread.
const GROUP_CHAT: &[(usize, &str)] = &[
    (ALICE, "大家好！下周一起去大理的都在这里了，先认识一下～"),
    (BOB, "来了来了，我周一晚上的航班到大理，住古城。"),
    (CAROL, "我周二到，想在喜洲住两晚，那边的扎染坊很想去。"),
    (DAVE, "我从昆明自驾过去，车上还能坐三个人，有人一起吗？"),
    (ERIN, "我我我！我坐高铁到昆明，能蹭车的话太好了，油费 AA。"),
    (DAVE, "没问题，周一早上八点昆明南站接你。"),
    (ALICE, "环洱海大家想骑车还是包车？"),
    (BOB, "骑车！东环线风景最好，双廊到挖色那段一定要骑。"),
    (CAROL, "我体力一般，骑一半可以吗？"),
    (BOB, "可以租电动车，累了就拧一下。"),
    (ERIN, "听说才村码头看日出很美，有人早起吗？"),
    (ALICE, "我！我带相机，给大家拍照。"),
    (DAVE, "天气预报说周三晴，可以安排周三早上去才村。"),
    (CAROL, "那周三早上六点半古城南门集合？"),
    (ALICE, "好，就这么定了。晚上我订了一家白族菜，人均八十左右。"),
    (BOB, "收到，我下午先去租车行看看车。"),
    (ERIN, "我查了一下，苍山索道学生票半价，我带学生证～"),
    (DAVE, "周四要不要去沙溪古镇？开车两个小时。"),
    (CAROL, "想去！沙溪周五有集市，很有意思。"),
    (BOB, "那周四出发，周五赶集，周六回大理。"),
    (DAVE, "我来做个行程表，晚点发群里。"),
];

/// Bob and alice (bob opens it); alice has read up to her own line: 2 unread.
const DIRECT_BOB: &[(usize, &str)] = &[
    (BOB, "小艾，骑车那天我帮你也租一辆？"),
    (ALICE, "好呀，要带车筐的那种，放相机。"),
    (BOB, "没问题，押金我先垫上，见面再给我就行。"),
    (BOB, "对了，你会骑电动车吗？"),
];

/// Frank and alice (frank opens it): 1 unread for alice.
const DIRECT_FRANK: &[(usize, &str)] = &[
    (FRANK, "你好，看到你也在拍洱海。我在大理住了一个月，有几个机位可以推荐给你。"),
    (ALICE, "太好了！谢谢方老师，想拍日落的话去哪里好？"),
    (FRANK, "日落推荐龙龛码头，或者海舌公园，五点半之前到就能占个好位置。"),
    (ALICE, "记下了，到时候请您喝咖啡！"),
    (FRANK, "哈哈好。明天傍晚我也去龙龛，可以一起。"),
];

/// The farm's updates on the animal alice claims.
const CLAIM_UPDATES: [&str; 2] = [
    "棉花糖今天剪了春毛，乖乖站着一动不动，剪完轻了三斤，凉快多了。",
    "早上带棉花糖上山吃草，苍山脚下的草正嫩，它跟着羊群跑得可欢了。下周给你寄照片！",
];

/// What the run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The world was made.
    Made,
    /// The store held the demo already; nothing was added.
    AlreadyThere,
}

/// How long one answer (an ack, an alert being relayed) may take before the run gives up.
const WAIT: Duration = Duration::from_secs(15);

/// Fills the configured store with the demo world (see the module's comment). Refused in
/// production. The server it builds listens on 127.0.0.1:0 for the run only and is drained and
/// stopped before this returns.
pub async fn run(mut config: Config) -> anyhow::Result<Outcome> {
    if config.env == Environment::Production {
        bail!("`jiebanke demo` is refused when JBK_ENV=production: it makes accounts anyone may log into with a dev login code (演示数据只用于开发环境)");
    }
    if !config.dev_login {
        bail!("`jiebanke demo` logs its users in with the dev login provider: do not turn it off (JBK_DEV_LOGIN)");
    }
    if config.wechat_pay.is_some() {
        bail!("`jiebanke demo` pays its orders with the local payment provider: unset the WeChat Pay settings (JBK_WECHATPAY_*)");
    }
    // The demo's own server: on a free port (a `serve` may hold the configured one), its admin
    // made at login, and no rate limit in the way of one client doing everything at once.
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    // Nobody scrapes the demo's short-lived server (and a `serve` may hold the metrics port).
    config.metrics_listen = crate::config::MetricsListen::Off;
    config.admins.push(("dev".into(), ADMIN_CODE.into()));
    let many = NonZeroU32::new(1_000_000).expect("nonzero");
    config.http_rate = (many, many);
    config.write_rate = (many, many);
    config.login_rate = many;
    config.gateway.msg_rate = many;
    config.gateway.msg_burst = many;
    config.gateway.handshake_rate = many;
    config.gateway.handshake_burst = many;

    let app = Application::build(config).await?;
    let addr = app.local_addr();
    let rest = Rest { router: app.router() };
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run());
    let outcome = populate(&rest, addr).await;
    // Drain and stop whatever happened: the writer stores what it acked, the store closes. The
    // writer ends once the last handle to it is gone, and the router holds one.
    drop(rest);
    shutdown.cancel();
    let stopped = server.await.context("the demo's server task")?;
    let outcome = outcome?;
    stopped?;
    Ok(outcome)
}

/// What to print after a run: the codes, who is who, what to open.
pub fn summary(config: &Config, outcome: Outcome) -> String {
    let store = match &config.database_url {
        Some(url) => redact_url(url),
        None => config.data_dir.join("jiebanke.db").display().to_string(),
    };
    let mut s = String::new();
    match outcome {
        Outcome::Made => s.push_str(&format!("The demo world is ready in {store} (演示数据已就绪).\n")),
        Outcome::AlreadyThere => s.push_str(&format!("The demo world is already in {store}; nothing was added (演示数据已存在).\n")),
    }
    // `serve` must find the same store: name it when it is not the default one.
    let mut serve = String::from("cargo run --release -- serve");
    if config.data_dir != std::path::Path::new("./data") {
        serve.push_str(&format!(" --data-dir {}", config.data_dir.display()));
    }
    if config.database_url.is_some() {
        serve.push_str("   # with the same JBK_DATABASE_URL");
    }
    s.push_str(&format!(
        "\nStart the server and open the traveller's web app:\n\n  {serve}\n  http://{}/app/\n\nLog in with one of these codes (the dev login provider: the code is the identity):\n\n",
        config.listen
    ));
    let roles = [
        "owns the group 「云南行 · 大理洱海」 (6 unread), chats with bob and frank; a delivered bouquet to confirm, an active claim of the sheep 棉花糖",
        "in the group; a direct chat with alice",
        "in the group; a completed order, reviewed 5★ (the florist replied)",
        "in the group; a paid order the florist has not handled yet",
        "in the group; a cancelled order",
        "a direct chat with alice (photo spots)",
    ];
    for (t, role) in TRAVELLERS.iter().zip(roles) {
        s.push_str(&format!("  {:<11} {}: {}\n", t.code, t.nickname, role));
    }
    s.push_str(&format!("  {:<11} {}: merchant 「{}」 (florist): 5 products, one order alert waiting for an ack\n", FLORIST.code, FLORIST.nickname, FLORIST.name));
    s.push_str(&format!("  {:<11} {}: merchant 「{}」 (farm): 3 animals to claim, alice's claim with 2 updates\n", FARM.code, FARM.nickname, FARM.name));
    s.push_str(&format!("  {:<11} {}: an admin (staff routes: merchant applications, moderation, audit)\n", ADMIN_CODE, ADMIN_NICKNAME));
    s
}

/// A database URL without its password, to print.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// A logged-in user of the demo.
struct Account {
    id: String,
    token: String,
    /// The privacy policy version the login answer asks the user to accept.
    privacy_version: String,
}

async fn populate(rest: &Rest, addr: SocketAddr) -> anyhow::Result<Outcome> {
    // Alice's profile is filled in last: with it, the whole demo is in.
    let alice = rest.login(TRAVELLERS[ALICE].code).await?;
    let me = rest.ok(Method::GET, "/api/v1/me", Some(&alice.token), None).await?;
    if me["bio"] == TRAVELLERS[ALICE].bio {
        return Ok(Outcome::AlreadyThere);
    }
    let florist = rest.login(FLORIST.code).await?;
    let alice_convs = rest.ok(Method::GET, "/api/v1/conversations", Some(&alice.token), None).await?;
    let florist_merchant = rest.ok(Method::GET, "/api/v1/me/merchant", Some(&florist.token), None).await?;
    if alice_convs["items"].as_array().is_some_and(|a| !a.is_empty()) || !florist_merchant["application"].is_null() {
        bail!(
            "this store already has data for the demo's users (alice has conversations, or flora applied as a merchant) but not the whole demo: \
             an earlier `jiebanke demo` was interrupted, or these login codes were used by hand. Nothing was added. \
             Run the demo on an empty store, e.g. `jiebanke demo --data-dir ./demo-data`, then `jiebanke serve --data-dir ./demo-data`"
        );
    }
    let admin = rest.login(ADMIN_CODE).await?;
    rest.ok(Method::PATCH, "/api/v1/me", Some(&admin.token), Some(json!({"nickname": ADMIN_NICKNAME}))).await?;
    rest.accept_privacy(&admin).await?;
    let mut travellers = vec![alice];
    for t in &TRAVELLERS[1..] {
        travellers.push(rest.login(t.code).await?);
    }
    let farm = rest.login(FARM.code).await?;

    // Profiles (alice's last), and the current privacy policy accepted (a new user is asked
    // first).
    for (t, a) in TRAVELLERS.iter().zip(&travellers).skip(1) {
        rest.profile(t, a).await?;
    }
    // Carol, dave and erin are looking for companions: anyone may add them to a group (by
    // default only contacts may, and alice shares no conversation with them yet).
    for i in [CAROL, DAVE, ERIN] {
        rest.ok(Method::PATCH, "/api/v1/me/settings", Some(&travellers[i].token), Some(json!({"group_add_from": "everyone"}))).await?;
    }

    // The two merchants apply; the admin approves them.
    for (shop, a) in [(&FLORIST, &florist), (&FARM, &farm)] {
        rest.ok(Method::PATCH, "/api/v1/me", Some(&a.token), Some(json!({"nickname": shop.nickname, "bio": shop.bio}))).await?;
        rest.accept_privacy(a).await?;
        let body = json!({"name": shop.name, "category": shop.category, "license_no": shop.license_no, "contact_name": shop.contact_name, "contact_phone": shop.contact_phone});
        let application = rest.ok(Method::POST, "/api/v1/merchants/applications", Some(&a.token), Some(body)).await?;
        let id = str_of(&application, "id")?;
        rest.ok(Method::GET, &format!("/api/v1/admin/merchant-applications/{id}/papers"), Some(&admin.token), None).await?;
        rest.ok(Method::POST, &format!("/api/v1/admin/merchant-applications/{id}/approve"), Some(&admin.token), None).await?;
    }

    // The catalog, each with a picture uploaded as the merchant.
    let mut products = Vec::new();
    for (title, description, price, stock, picture) in &PRODUCTS {
        let photo = rest.upload_png(&florist, &picture.png()).await?;
        let body = json!({"kind": "flower", "title": title, "description": description, "price_fen": price, "stock": stock, "photos": [photo]});
        products.push(str_of(&rest.ok(Method::POST, "/api/v1/merchant/products", Some(&florist.token), Some(body)).await?, "id")?);
    }
    let mut animals = Vec::new();
    for (species, name, story, price, days, slots, picture) in &ANIMALS {
        let photo = rest.upload_png(&farm, &picture.png()).await?;
        let body = json!({"species": species, "name": name, "story": story, "price_fen": price, "period_days": days, "slots": slots, "photos": [photo]});
        animals.push(str_of(&rest.ok(Method::POST, "/api/v1/merchant/animals", Some(&farm.token), Some(body)).await?, "id")?);
    }

    // The conversations, spoken over the gateway.
    chats(rest, addr, &travellers).await?;

    // Orders. Delivery days are in the business zone: today, or tomorrow.
    let today = rest.ok(Method::GET, "/api/v1/admin/dashboard", Some(&admin.token), None).await?;
    let today = str_of(&today, "day")?;
    let tomorrow = next_day(&today)?;
    let order = |items: Value, name: &str, phone: &str, address: &str, day: &str, slot: &str, note: &str| {
        json!({"items": items, "recipient": {"name": name, "phone": phone, "address": address}, "deliver_on": day, "slot": slot, "note": note})
    };
    // Carol's roses: delivered, confirmed, reviewed, answered.
    let carol = &travellers[CAROL];
    let body = order(json!([{"product": products[ROSE], "quantity": 1}]), "卡萝", "+8613712345601", "大理古城叶榆路 88 号 · 苍洱间客栈", &today, "afternoon", "送到前台就好，谢谢");
    let roses = rest.place_and_pay(carol, body).await?;
    rest.ok(Method::POST, &format!("/api/v1/merchant/orders/{roses}/fulfil"), Some(&florist.token), None).await?;
    rest.ok(Method::POST, &format!("/api/v1/orders/{roses}/complete"), Some(&carol.token), None).await?;
    let review = json!({"rating": 5, "text": "花很新鲜，包装也用心，老板还多送了一小把满天星！"});
    let review = rest.ok(Method::POST, &format!("/api/v1/orders/{roses}/review"), Some(&carol.token), Some(review)).await?;
    let reply = json!({"text": "谢谢卡萝喜欢～路过人民路记得进来喝杯花茶。"});
    rest.ok(Method::POST, &format!("/api/v1/merchant/reviews/{}/reply", str_of(&review, "id")?), Some(&florist.token), Some(reply)).await?;
    // Alice's hydrangeas: delivered, waiting for her to confirm.
    let alice = &travellers[ALICE];
    let body = order(json!([{"product": products[HYDRANGEA], "quantity": 1}]), "小艾", "+8613612345602", "大理古城人民路 128 号 · 风花雪月客栈", &today, "evening", "想给同行的朋友们一个惊喜");
    let hydrangeas = rest.place_and_pay(alice, body).await?;
    rest.ok(Method::POST, &format!("/api/v1/merchant/orders/{hydrangeas}/fulfil"), Some(&florist.token), None).await?;
    // Dave's lilies and sunflowers: paid, not handled yet (the florist's alert waits).
    let dave = &travellers[DAVE];
    let items = json!([{"product": products[LILY], "quantity": 1}, {"product": products[SUNFLOWER], "quantity": 2}]);
    let body = order(items, "大伟", "+8618612345603", "喜洲古镇四方街 · 喜林苑", &tomorrow, "morning", "周三早上出发前送到");
    let lilies = rest.place_and_pay(dave, body).await?;
    // Erin's sunflowers: cancelled before paying.
    let erin = &travellers[ERIN];
    let body = order(json!([{"product": products[SUNFLOWER], "quantity": 3}]), "艾琳", "+8615012345604", "大理古城洋人街 · 青年旅舍", &tomorrow, "afternoon", "");
    let placed = rest.ok(Method::POST, "/api/v1/orders", Some(&erin.token), Some(body)).await?;
    rest.ok(Method::POST, &format!("/api/v1/orders/{}/cancel", str_of(&placed, "id")?), Some(&erin.token), None).await?;
    // Alice claims the sheep for a period; the farm posts two updates.
    let placed = rest.ok(Method::POST, &format!("/api/v1/animals/{}/claims", animals[0]), Some(&alice.token), Some(json!({"periods": 1}))).await?;
    let claim_order = placed["order"]["id"].as_str().context("the claim's order")?.to_owned();
    rest.pay(alice, &claim_order).await?;
    for text in CLAIM_UPDATES {
        rest.ok(Method::POST, &format!("/api/v1/merchant/animals/{}/updates", animals[0]), Some(&farm.token), Some(json!({"text": text}))).await?;
    }

    // The merchants saw the alerts of what they handled; dave's order's alert waits.
    rest.ack_alerts(&florist, &[&roses, &hydrangeas], &lilies).await?;
    rest.ack_alerts(&farm, &[&claim_order], "").await?;

    // Last: alice's profile, the mark that the whole demo is in.
    rest.profile(&TRAVELLERS[ALICE], &travellers[ALICE]).await?;
    Ok(Outcome::Made)
}

/// The group and the two direct conversations, each line sent by its speaker's socket and
/// acked (stored) before the next; each speaker has read up to what they said.
async fn chats(rest: &Rest, addr: SocketAddr, travellers: &[Account]) -> anyhow::Result<()> {
    let mut sockets = Vec::new();
    for a in travellers {
        sockets.push(Socket::open(addr, a).await?);
    }
    let alice = &travellers[ALICE];
    // The direct conversations first: bob is then alice's contact, and may be added to her group.
    let with_bob = rest.ok(Method::POST, "/api/v1/conversations", Some(&travellers[BOB].token), Some(json!({"kind": "direct", "members": [alice.id]}))).await?;
    let with_frank = rest.ok(Method::POST, "/api/v1/conversations", Some(&travellers[FRANK].token), Some(json!({"kind": "direct", "members": [alice.id]}))).await?;
    let members: Vec<&str> = [BOB, CAROL, DAVE, ERIN].iter().map(|&i| travellers[i].id.as_str()).collect();
    let group = rest.ok(Method::POST, "/api/v1/conversations", Some(&alice.token), Some(json!({"kind": "group", "title": GROUP_TITLE, "members": members}))).await?;
    let group = str_of(&group, "id")?;
    for (conv, script, tag) in [(group, GROUP_CHAT, "g"), (str_of(&with_bob, "id")?, DIRECT_BOB, "b"), (str_of(&with_frank, "id")?, DIRECT_FRANK, "f")] {
        for (n, (who, text)) in script.iter().enumerate() {
            let seq = sockets[*who].say(&conv, &format!("demo-{tag}-{n:02}"), text).await?;
            sockets[*who].read_up_to(&conv, seq).await?;
        }
    }
    for s in sockets {
        s.close().await;
    }
    Ok(())
}

fn str_of(v: &Value, field: &str) -> anyhow::Result<String> {
    v[field].as_str().map(str::to_owned).with_context(|| format!("no `{field}` in {v}"))
}

/// The day after `YYYY-MM-DD`.
fn next_day(day: &str) -> anyhow::Result<String> {
    let d: jiff::civil::Date = day.parse().with_context(|| format!("a day: {day}"))?;
    Ok(d.tomorrow().context("the day after")?.to_string())
}

/// The server's router, called in process as the listener would (from 127.0.0.1).
struct Rest {
    router: axum::Router,
}

impl Rest {
    /// One request; its status and JSON body (`Null` if none).
    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> anyhow::Result<(StatusCode, Value)> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        self.send(req.context("a request")?).await
    }

    async fn send(&self, mut req: Request<Body>) -> anyhow::Result<(StatusCode, Value)> {
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 1))));
        let mut router = self.router.clone();
        std::future::poll_fn(|cx| <axum::Router as Service<Request<Body>>>::poll_ready(&mut router, cx)).await?;
        let resp = router.call(req).await?;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 4 << 20).await.context("an answer's body")?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// A request that must succeed (2xx): its body; else an error naming the route and answer.
    async fn ok(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> anyhow::Result<Value> {
        let m = method.clone();
        let (status, v) = self.call(method, path, token, body).await?;
        if !status.is_success() {
            bail!("{m} {path} answered {status}: {v}");
        }
        Ok(v)
    }

    async fn login(&self, code: &str) -> anyhow::Result<Account> {
        let v = self.ok(Method::POST, "/api/v1/auth/login", None, Some(json!({"code": code}))).await?;
        Ok(Account {
            id: v["user"]["id"].as_str().context("the login's user id")?.to_owned(),
            token: str_of(&v, "token")?,
            privacy_version: v["privacy"]["version"].as_str().context("the login's privacy version")?.to_owned(),
        })
    }

    /// Fills in a traveller's profile and accepts the privacy policy.
    async fn profile(&self, t: &Traveller, a: &Account) -> anyhow::Result<()> {
        let profile = json!({"nickname": t.nickname, "gender": t.gender, "birth_year": t.birth_year, "bio": t.bio, "tags": t.tags});
        self.ok(Method::PATCH, "/api/v1/me", Some(&a.token), Some(profile)).await?;
        self.accept_privacy(a).await
    }

    /// Accepts the privacy policy version the server asked for at login.
    async fn accept_privacy(&self, a: &Account) -> anyhow::Result<()> {
        self.ok(Method::PUT, "/api/v1/me/consent", Some(&a.token), Some(json!({"version": a.privacy_version}))).await?;
        Ok(())
    }

    /// Uploads a PNG as `a`; its URL.
    async fn upload_png(&self, a: &Account, png: &[u8]) -> anyhow::Result<String> {
        const BOUNDARY: &str = "jiebanke-demo-boundary-7f3a";
        let mut body = format!("--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"photo.png\"\r\ncontent-type: image/png\r\n\r\n").into_bytes();
        body.extend_from_slice(png);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/uploads")
            .header("authorization", format!("Bearer {}", a.token))
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(Body::from(body))
            .context("an upload request")?;
        let (status, v) = self.send(req).await?;
        if status != StatusCode::CREATED {
            bail!("POST /api/v1/uploads answered {status}: {v}");
        }
        str_of(&v, "url")
    }

    /// Places an order as `buyer` and pays it; its id.
    async fn place_and_pay(&self, buyer: &Account, body: Value) -> anyhow::Result<String> {
        let placed = self.ok(Method::POST, "/api/v1/orders", Some(&buyer.token), Some(body)).await?;
        let id = str_of(&placed, "id")?;
        self.pay(buyer, &id).await?;
        Ok(id)
    }

    /// Pays an order with the local provider, as the development client does: `pay`, then
    /// `confirm` (which sends the provider's signed callback through its verification).
    async fn pay(&self, buyer: &Account, order: &str) -> anyhow::Result<()> {
        let params = self.ok(Method::POST, &format!("/api/v1/orders/{order}/pay"), Some(&buyer.token), None).await?;
        if params["provider"] != "local" {
            bail!("the demo pays with the local provider, and the server answered {params}");
        }
        let payment = str_of(&params, "payment")?;
        self.ok(Method::POST, &format!("/api/v1/payments/local/{payment}/confirm"), Some(&buyer.token), None).await?;
        Ok(())
    }

    /// Waits until the merchant's alerts for `ack` (and `keep`, if not empty) are relayed, then
    /// acks those of `ack`.
    async fn ack_alerts(&self, merchant: &Account, ack: &[&str], keep: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let v = self.ok(Method::GET, "/api/v1/alerts?limit=100", Some(&merchant.token), None).await?;
            let pending: Vec<(String, String)> = v["items"]
                .as_array()
                .map(|items| items.iter().filter_map(|a| Some((a["alert"].as_str()?.to_owned(), a["order"]["id"].as_str()?.to_owned()))).collect())
                .unwrap_or_default();
            let has = |order: &str| pending.iter().any(|(_, o)| o == order);
            if ack.iter().all(|o| has(o)) && (keep.is_empty() || has(keep)) {
                for (alert, order) in &pending {
                    if ack.contains(&order.as_str()) {
                        self.ok(Method::POST, &format!("/api/v1/alerts/{alert}/ack"), Some(&merchant.token), None).await?;
                    }
                }
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the order alerts were not relayed within {WAIT:?} (pending: {v})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One user's WebSocket session (JSON frames).
struct Socket {
    ws: WsStream,
    user: String,
    next_id: u64,
}

impl Socket {
    async fn open(addr: SocketAddr, a: &Account) -> anyhow::Result<Socket> {
        let mut req = format!("ws://{addr}/ws").into_client_request()?;
        req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(&format!("jbk.v1.json, jbk.auth.{}", a.token))?);
        let (ws, _) = tokio_tungstenite::connect_async(req).await.context("opening a WebSocket session")?;
        let mut s = Socket { ws, user: a.id.clone(), next_id: 1 };
        let hello = s.frame().await?;
        if hello["type"] != "hello" {
            bail!("the session's first frame was not hello: {hello}");
        }
        Ok(s)
    }

    /// The next data frame, skipping pings.
    async fn frame(&mut self) -> anyhow::Result<Value> {
        loop {
            let msg = match tokio::time::timeout(WAIT, self.ws.next()).await {
                Err(_) => bail!("the gateway did not answer within {WAIT:?}"),
                Ok(None) => bail!("the gateway closed the session"),
                Ok(Some(m)) => m?,
            };
            match msg {
                Message::Text(t) => return Ok(serde_json::from_str(t.as_str())?),
                Message::Close(f) => bail!("the gateway closed the session: {f:?}"),
                _ => continue,
            }
        }
    }

    /// Sends a text message and waits for its ack (it is stored then); its seq.
    async fn say(&mut self, conv: &str, cmid: &str, text: &str) -> anyhow::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let frame = json!({"type": "send", "id": id, "conv": conv, "cmid": cmid, "body": {"kind": "text", "text": text}});
        self.ws.send(Message::Text(frame.to_string().into())).await?;
        loop {
            let v = self.frame().await?;
            if v["id"] == id && v["type"] == "ack" {
                return v["seq"].as_u64().with_context(|| format!("an ack without a seq: {v}"));
            }
            if v["id"] == id && v["type"] == "error" {
                bail!("sending {text:?} failed: {v}");
            }
        }
    }

    /// Moves my read position to `seq` and waits until the gateway says it moved.
    async fn read_up_to(&mut self, conv: &str, seq: u64) -> anyhow::Result<()> {
        let frame = json!({"type": "read", "conv": conv, "seq": seq});
        self.ws.send(Message::Text(frame.to_string().into())).await?;
        loop {
            let v = self.frame().await?;
            if v["type"] == "read" && v["conv"] == conv && v["user"] == self.user.as_str() && v["seq"].as_u64() >= Some(seq) {
                return Ok(());
            }
            if v["type"] == "error" {
                bail!("marking {conv} read failed: {v}");
            }
        }
    }

    async fn close(mut self) {
        let _ = self.ws.close(None).await;
        // Read until the server's close arrives, so that it ends the session cleanly.
        let _ = tokio::time::timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = self.ws.next().await {} }).await;
    }
}

/// A small generated picture for a product or an animal: a flower (petals round a centre) or
/// an animal (a body and a head), in three colours on a background.
#[derive(Clone, Copy)]
struct Picture {
    shape: Shape,
    /// Background, main, second colour.
    colours: [[u8; 3]; 3],
}

#[derive(Clone, Copy)]
enum Shape {
    Flower,
    Animal,
}

impl Picture {
    const ROSE: Picture = Picture { shape: Shape::Flower, colours: [[253, 236, 239], [200, 30, 60], [130, 16, 40]] };
    const SUNFLOWER: Picture = Picture { shape: Shape::Flower, colours: [[255, 248, 225], [250, 196, 30], [110, 70, 30]] };
    const LILY: Picture = Picture { shape: Shape::Flower, colours: [[214, 234, 220], [255, 252, 246], [240, 170, 60]] };
    const BABY_BREATH: Picture = Picture { shape: Shape::Flower, colours: [[205, 220, 240], [255, 255, 255], [236, 236, 228]] };
    const HYDRANGEA: Picture = Picture { shape: Shape::Flower, colours: [[235, 242, 250], [90, 140, 220], [250, 250, 255]] };
    const SHEEP: Picture = Picture { shape: Shape::Animal, colours: [[214, 238, 204], [250, 250, 244], [90, 80, 70]] };
    const PIG: Picture = Picture { shape: Shape::Animal, colours: [[228, 244, 218], [245, 182, 192], [232, 148, 164]] };
    const COW: Picture = Picture { shape: Shape::Animal, colours: [[212, 232, 250], [236, 206, 150], [120, 86, 58]] };

    const SIZE: usize = 240;

    /// The picture as a palette PNG.
    fn png(&self) -> Vec<u8> {
        let n = Self::SIZE;
        let inside = |x: f32, y: f32, cx: f32, cy: f32, rx: f32, ry: f32| ((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2) <= 1.0;
        let c = n as f32 / 2.0;
        let mut pixels = vec![0u8; n * n];
        for (i, p) in pixels.iter_mut().enumerate() {
            let (x, y) = ((i % n) as f32 + 0.5, (i / n) as f32 + 0.5);
            *p = match self.shape {
                Shape::Flower => {
                    let petal = (0..6).any(|k| {
                        let a = k as f32 * std::f32::consts::PI / 3.0;
                        inside(x, y, c + 50.0 * a.cos(), c + 50.0 * a.sin(), 38.0, 38.0)
                    });
                    if inside(x, y, c, c, 30.0, 30.0) {
                        2
                    } else if petal {
                        1
                    } else {
                        0
                    }
                }
                Shape::Animal => {
                    let leg = [c - 45.0, c - 20.0, c + 15.0, c + 40.0].iter().any(|&lx| x >= lx && x <= lx + 12.0 && y >= c + 20.0 && y <= c + 75.0);
                    if inside(x, y, c + 62.0, c - 30.0, 30.0, 26.0) {
                        2
                    } else if inside(x, y, c - 5.0, c + 10.0, 72.0, 46.0) {
                        1
                    } else if leg {
                        2
                    } else {
                        0
                    }
                }
            };
        }
        png(n as u32, &self.colours, &pixels)
    }
}

/// An 8-bit palette PNG of `width` × `pixels.len() / width` with stored (uncompressed) deflate
/// blocks.
fn png(width: u32, palette: &[[u8; 3]], pixels: &[u8]) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    let height = pixels.len() as u32 / width;
    // Each row: filter type 0, then its palette indexes.
    let mut raw = Vec::with_capacity(pixels.len() + height as usize);
    for row in pixels.chunks(width as usize) {
        raw.push(0);
        raw.extend(row);
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend(len.to_le_bytes());
        zlib.extend((!len).to_le_bytes());
        zlib.extend(*block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + x as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend(((b << 16) | a).to_be_bytes());
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 3, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"PLTE", &palette.concat());
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

