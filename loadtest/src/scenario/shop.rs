//! `shop`: buyers browse and order merchants' flowers, on many products and on one hot product
//! with little stock, and pay with the local provider; the merchants' sessions receive the
//! alerts. Checked: no oversell (every product's final stock plus what was ordered of it is its
//! initial stock, and the hot product's orders never exceed its stock), every paid order alerted
//! to its own merchant, and the merchants' order lists agreeing with what was paid.
//!
//! Against the Node.js peer (`--peer`), which has no merchants, payments or alerts: the peer
//! seeds its own products (`POST /api/v1/peer/seed`) and the buyers browse and order only, the
//! same create-order-with-stock transaction.

use super::{login_all, spinner, Outcome, Probe, User};
use crate::client::{decode, Target};
use crate::stats::{histogram, Latency, Timeline};
use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct ShopArgs {
    /// Merchants, each with `--products` products.
    #[arg(long, default_value_t = 4)]
    pub merchants: usize,
    #[arg(long, default_value_t = 25)]
    pub products: usize,
    /// Stock of each ordinary product.
    #[arg(long, default_value_t = 1_000_000)]
    pub stock: u32,
    /// Stock of the hot product (merchant 0's), which buyers race for.
    #[arg(long, default_value_t = 50)]
    pub hot_stock: u32,
    #[arg(long, default_value_t = 200)]
    pub buyers: usize,
    /// Requests (browse, or order and pay) in flight.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Percent of operations that browse a merchant's products.
    #[arg(long, default_value_t = 30)]
    pub browse_share: u64,
    /// Percent of orders that go to the hot product.
    #[arg(long, default_value_t = 10)]
    pub hot_share: u64,
    /// The login code of an admin (the server's `JBK_ADMINS` must name `dev:<code>`), who
    /// approves the merchants.
    #[arg(long, default_value = "shop-root")]
    pub admin_code: String,
    /// Seconds to wait after the load for the last alerts.
    #[arg(long, default_value_t = 10)]
    pub grace: u64,
    /// The target is the Node.js peer: seed its products, browse and order only.
    #[arg(long)]
    pub peer: bool,
    /// Order without paying (what the peer does), to compare the create-order path alone.
    #[arg(long)]
    pub create_only: bool,
}

/// The products a run orders: (id, merchant index, initial stock).
struct Catalog {
    products: Vec<(String, usize, u32)>,
    hot: usize,
    merchants: Vec<User>,
}

async fn setup(t: &Arc<Target>, a: &ShopArgs, prefix: &str) -> anyhow::Result<Catalog> {
    if a.peer {
        let seeder = &login_all(t, &format!("{prefix}-shop-seed"), 1).await?[0];
        let v = t
            .post("/api/v1/peer/seed", &seeder.token, json!({"merchants": a.merchants, "products": a.products, "stock": a.stock, "hot_stock": a.hot_stock}))
            .await
            .context("seeding the peer's products")?;
        let mut products = Vec::new();
        for p in v["products"].as_array().context("products")? {
            products.push((p["id"].as_str().context("id")?.to_owned(), p["merchant"].as_u64().unwrap_or(0) as usize, p["stock"].as_u64().unwrap_or(0) as u32));
        }
        let hot = products.iter().position(|p| p.2 == a.hot_stock).context("the hot product")?;
        return Ok(Catalog { products, hot, merchants: Vec::new() });
    }
    let (admin_token, _) = t.login(&a.admin_code).await?;
    let merchants = login_all(t, &format!("{prefix}-shop-m"), a.merchants.max(1)).await?;
    let mut products = Vec::new();
    let mut hot = 0;
    // One licence number, one open application: each merchant of each run a number of its own.
    let license_of = |prefix: &str, i: usize| {
        let run = prefix.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 9_000_000;
        jiebanke_chat_core::merchants::rules::CreditCode::numbered(run + i as u32)
    };
    for (i, m) in merchants.iter().enumerate() {
        let app = t
            .post(
                "/api/v1/merchants/applications",
                &m.token,
                json!({"name": format!("压测花坊{i}"), "category": "florist", "license_no": license_of(prefix, i).as_str(), "contact_name": "王", "contact_phone": "+8613812345678"}),
            )
            .await?;
        let id = app["id"].as_str().context("application id")?;
        t.post(&format!("/api/v1/admin/merchant-applications/{id}/approve"), &admin_token, json!({}))
            .await
            .context("approving (is the admin code in JBK_ADMINS?)")?;
        for k in 0..a.products {
            let p = t.post("/api/v1/merchant/products", &m.token, json!({"kind": "flower", "title": format!("花束{i}-{k}"), "price_fen": 990 + k as i64, "stock": a.stock})).await?;
            products.push((p["id"].as_str().context("product id")?.to_owned(), i, a.stock));
        }
        if i == 0 {
            let p = t.post("/api/v1/merchant/products", &m.token, json!({"kind": "flower", "title": "限量玫瑰", "price_fen": 5200, "stock": a.hot_stock})).await?;
            hot = products.len();
            products.push((p["id"].as_str().context("product id")?.to_owned(), 0, a.hot_stock));
        }
    }
    Ok(Catalog { products, hot, merchants })
}

/// What the workers did, for the checks.
#[derive(Default)]
struct Ledger {
    /// Quantity ordered (created) per product index.
    ordered: HashMap<usize, u64>,
    /// Paid orders: id → merchant index.
    paid: HashMap<String, usize>,
}

pub async fn run(t: Arc<Target>, a: ShopArgs, prefix: &str, probe: Probe) -> anyhow::Result<Outcome> {
    let cat = Arc::new(setup(&t, &a, prefix).await?);
    let buyers = Arc::new(login_all(&t, &format!("{prefix}-shop-b"), a.buyers.max(1)).await?);

    // The merchants' sessions: every alert recorded (order → merchant, and how often) and acked.
    let alerts: Arc<Mutex<HashMap<String, (String, u32)>>> = Arc::new(Mutex::new(HashMap::new()));
    let mut readers = Vec::new();
    for m in &cat.merchants {
        let ws = t.connect(&m.token).await?;
        let (mut sink, mut stream) = ws.split();
        let (t2, alerts) = (t.clone(), alerts.clone());
        readers.push(tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Some(f) = decode(t2.codec, &msg) else { continue };
                if f.ty != "order_alert" {
                    continue;
                }
                if let (Some(alert), Some(order)) = (f.alert, f.order) {
                    alerts.lock().unwrap_or_else(|e| e.into_inner()).entry(order.id).or_insert((order.merchant, 0)).1 += 1;
                    if sink.send(t2.frame(&json!({"type": "alert_ack", "alert": alert}))).await.is_err() {
                        break;
                    }
                }
            }
        }));
    }

    // Tomorrow in the business zone (Asia/Shanghai, UTC+8).
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let tomorrow = jiebanke_chat_core::matching::Day::of_ms(now_ms + 8 * 3_600_000 + 86_400_000).to_string();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.duration);
    let created = Arc::new(Timeline::new(start, a.duration as usize + 5));
    let paid = Arc::new(Timeline::new(start, a.duration as usize + 5));
    let (out_of_stock, errors, browsed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    // create, pay (pay + confirm), browse
    let hists = Arc::new(Mutex::new([histogram(), histogram(), histogram()]));
    probe();
    let mut tasks = Vec::new();
    for w in 0..a.concurrency {
        let (t, cat, buyers, created, paid, out_of_stock, errors, browsed, ledger, hists, first_error, tomorrow, a) = (
            t.clone(),
            cat.clone(),
            buyers.clone(),
            created.clone(),
            paid.clone(),
            out_of_stock.clone(),
            errors.clone(),
            browsed.clone(),
            ledger.clone(),
            hists.clone(),
            first_error.clone(),
            tomorrow.clone(),
            a.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut local = [histogram(), histogram(), histogram()];
            let mut rng = 0x2545F4914F6CDD1Du64 ^ ((w as u64 + 1) * 0x9E37_79B9);
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let fail = |why: String| {
                errors.fetch_add(1, Relaxed);
                first_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(why);
            };
            while Instant::now() < deadline {
                let buyer = &buyers[(next() % buyers.len() as u64) as usize];
                if next() % 100 < a.browse_share {
                    let m = next() % (a.merchants.max(1) as u64);
                    let began = Instant::now();
                    let path = if a.peer { format!("/api/v1/products?merchant={m}&limit=20") } else { format!("/api/v1/products?merchant={}&limit=20", cat.merchants[m as usize].id) };
                    match t.get_json(&path, &buyer.token).await {
                        Ok(v) if v["items"].as_array().is_some_and(|l| !l.is_empty()) => {
                            let _ = local[2].record((began.elapsed().as_micros() as u64).max(1));
                            browsed.fetch_add(1, Relaxed);
                        }
                        Ok(v) => fail(format!("browse: no products: {v}")),
                        Err(e) => fail(format!("browse: {e}")),
                    }
                    continue;
                }
                let (index, quantity) = if next() % 100 < a.hot_share {
                    (cat.hot, 1)
                } else {
                    let ordinary = cat.products.len() - 1;
                    let k = (next() % ordinary as u64) as usize;
                    (if k >= cat.hot { k + 1 } else { k }, 1 + (next() % 3) as u32)
                };
                let (product, merchant, _) = &cat.products[index];
                let body = json!({
                    "items": [{"product": product, "quantity": quantity}],
                    "recipient": {"name": "王小花", "phone": "+8613812345678", "address": "大理古城人民路 1 号"},
                    "deliver_on": tomorrow, "slot": "afternoon",
                });
                let began = Instant::now();
                let order = match t.post_status("/api/v1/orders", &buyer.token, &body).await {
                    Ok((201, v)) => v,
                    Ok((409, v)) if v["code"] == "out_of_stock" => {
                        out_of_stock.fetch_add(1, Relaxed);
                        continue;
                    }
                    Ok((s, v)) => {
                        fail(format!("order: HTTP {s}: {v}"));
                        continue;
                    }
                    Err(e) => {
                        fail(format!("order: {e}"));
                        continue;
                    }
                };
                let _ = local[0].record((began.elapsed().as_micros() as u64).max(1));
                created.add(1);
                let Some(id) = order["id"].as_str().map(str::to_owned) else {
                    fail(format!("order without an id: {order}"));
                    continue;
                };
                *ledger.lock().unwrap_or_else(|e| e.into_inner()).ordered.entry(index).or_insert(0) += u64::from(quantity);
                if a.peer || a.create_only {
                    continue;
                }
                let began = Instant::now();
                let payment = match t.post_status(&format!("/api/v1/orders/{id}/pay"), &buyer.token, &json!({})).await {
                    Ok((200, v)) => v["payment"].as_str().map(str::to_owned),
                    other => {
                        fail(format!("pay: {other:?}"));
                        continue;
                    }
                };
                let Some(payment) = payment else {
                    fail("pay: no local payment (is the server on the local provider?)".into());
                    continue;
                };
                match t.post_status(&format!("/api/v1/payments/local/{payment}/confirm"), &buyer.token, &json!({})).await {
                    Ok((204, _)) => {
                        let _ = local[1].record((began.elapsed().as_micros() as u64).max(1));
                        paid.add(1);
                        ledger.lock().unwrap_or_else(|e| e.into_inner()).paid.insert(id, *merchant);
                    }
                    other => fail(format!("confirm: {other:?}")),
                }
            }
            let mut g = hists.lock().unwrap_or_else(|e| e.into_inner());
            for (all, mine) in g.iter_mut().zip(local.iter()) {
                let _ = all.add(mine);
            }
        }));
    }
    let pb = spinner();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let s = start.elapsed().as_secs_f64();
        pb.set_message(format!("{} orders ({:.0}/s), {} paid ({:.0}/s)", created.get(), created.get() as f64 / s, paid.get(), paid.get() as f64 / s));
    }
    for task in tasks {
        let _ = task.await;
    }
    probe();
    let window = start.elapsed().as_secs_f64();
    pb.finish_and_clear();

    let mut out = Outcome { window_s: window, ..Outcome::default() };
    let ledger = ledger.lock().unwrap_or_else(|e| e.into_inner());
    let errs = errors.load(Relaxed);
    if errs > 0 {
        out.failures.push(format!("{errs} requests failed; the first: {}", first_error.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default()));
    }

    // No oversell: each product's final stock plus what was ordered of it is its initial stock.
    let reader = &buyers[0];
    let mut oversold = Vec::new();
    for (index, (id, _, initial)) in cat.products.iter().enumerate() {
        let ordered = ledger.ordered.get(&index).copied().unwrap_or(0);
        let v = t.get_json(&format!("/api/v1/products/{id}"), &reader.token).await?;
        let left = v["stock"].as_u64().context("stock")?;
        if left + ordered != u64::from(*initial) {
            oversold.push(format!("product {id}: {ordered} ordered, {left} left of {initial}"));
        }
    }
    let hot_ordered = ledger.ordered.get(&cat.hot).copied().unwrap_or(0);
    if hot_ordered > u64::from(a.hot_stock) {
        oversold.push(format!("the hot product: {hot_ordered} ordered of {}", a.hot_stock));
    }
    if !oversold.is_empty() {
        out.failures.push(format!("stock does not add up: {}", oversold.join("; ")));
    }

    let mut results = json!({
        "orders_created": created.get(),
        "orders_created_per_s": created.get() as f64 / window,
        "out_of_stock": out_of_stock.load(Relaxed),
        "hot_product_ordered": hot_ordered,
        "browses": browsed.load(Relaxed),
        "errors": errs,
    });
    if !a.peer {
        // Every paid order alerted once to its own merchant (waiting up to the grace).
        let waited = Instant::now();
        loop {
            let missing = {
                let seen = alerts.lock().unwrap_or_else(|e| e.into_inner());
                ledger.paid.keys().filter(|id| !seen.contains_key(*id)).count()
            };
            if missing == 0 || waited.elapsed() > Duration::from_secs(a.grace) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let seen = alerts.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let missing = ledger.paid.keys().filter(|id| !seen.contains_key(*id)).count();
        let wrong = ledger.paid.iter().filter(|(id, m)| seen.get(*id).is_some_and(|(merchant, _)| *merchant != cat.merchants[**m].id)).count();
        let twice = seen.values().filter(|(_, n)| *n > 1).count();
        let unknown = seen.keys().filter(|id| !ledger.paid.contains_key(*id)).count();
        if missing > 0 || wrong > 0 || unknown > 0 {
            out.failures.push(format!("alerts: {missing} paid orders never alerted, {wrong} to the wrong merchant, {unknown} for orders not paid"));
        }
        // Final states agree with what was paid: every merchant's `paid` list is its paid orders.
        let mut listed: HashSet<String> = HashSet::new();
        for m in &cat.merchants {
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => format!("/api/v1/merchant/orders?state=paid&limit=100&cursor={c}"),
                    None => "/api/v1/merchant/orders?state=paid&limit=100".to_owned(),
                };
                let v: Value = t.get_json(&path, &m.token).await?;
                for o in v["items"].as_array().context("items")? {
                    listed.insert(o["id"].as_str().unwrap_or_default().to_owned());
                }
                match v["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
        }
        let paid_ids: HashSet<String> = ledger.paid.keys().cloned().collect();
        if listed != paid_ids {
            out.failures.push(format!("merchants list {} paid orders, the buyers paid {}", listed.len(), paid_ids.len()));
        }
        results["orders_paid"] = json!(paid.get());
        results["orders_paid_per_s"] = json!(paid.get() as f64 / window);
        results["alerts"] = json!(seen.len());
        results["alerts_repeated"] = json!(twice);
    }
    for r in readers {
        r.abort();
    }
    out.results = results.as_object().cloned().unwrap_or_default();
    let g = hists.lock().unwrap_or_else(|e| e.into_inner());
    out.latency.insert("create_order".into(), Latency::of(&g[0]));
    if !a.peer {
        out.latency.insert("pay".into(), Latency::of(&g[1]));
    }
    out.latency.insert("browse".into(), Latency::of(&g[2]));
    out.timeline.insert("orders_created".into(), created.series(window as usize + 1));
    if !a.peer {
        out.timeline.insert("orders_paid".into(), paid.series(window as usize + 1));
    }
    Ok(out)
}
