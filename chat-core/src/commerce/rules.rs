//! The rules of the shop, pure: a product's and an animal's fields, an order's input, and its
//! amount, computed from the products' own prices (never from what the client says). Every bad
//! field is named; the texts people read pass the banned-word screen.

use crate::error::{CoreError, FieldProblem, Result};
use crate::moderation::WordFilter;

/// Most photos of a product, an animal or an update.
pub const MAX_PHOTOS: usize = 9;
/// Highest price of one item, in fen (1,000,000 yuan).
pub const MAX_PRICE_FEN: i64 = 100_000_000;
/// Highest amount of one order, in fen: below 2^31, since WeChat Pay's `amount.total` is an
/// int32 (2,147,483,647 fen, about 21 million yuan).
pub const MAX_AMOUNT_FEN: i64 = i32::MAX as i64;
/// Most distinct products in one order, and most of one product.
pub const MAX_LINES: usize = 20;
pub const MAX_QUANTITY: u32 = 99;
/// How far ahead a delivery day may be.
pub const MAX_DELIVERY_DAYS_AHEAD: i64 = 60;

/// A user-written text: trimmed, `min..=max` characters, no control characters but newlines,
/// screened by `filter`; a problem is pushed to `bad` naming `field`.
pub(crate) fn text(field: &str, raw: &str, min: usize, max: usize, filter: Option<&WordFilter>, bad: &mut Vec<FieldProblem>) -> String {
    let t = raw.trim();
    let n = t.chars().count();
    // A required text must show something; any text holds only what the one text rule allows.
    let rule = if min > 0 { crate::text::required_problem(t, crate::text::Lines::Many) } else { crate::text::problem(t, crate::text::Lines::Many) };
    if n < min || n > max {
        bad.push(FieldProblem::new(field, format!("must be {min}-{max} characters")));
    } else if let Some(p) = rule {
        bad.push(FieldProblem::new(field, p));
    } else if filter.is_some_and(|f| !f.matches(t).is_empty()) {
        bad.push(FieldProblem::new(field, "contains words that are not allowed"));
    }
    t.to_owned()
}

/// At most `MAX_PHOTOS` photos, each an `https://` URL or an upload's `/uploads/` path.
pub(crate) fn photos(field: &str, list: &[String], bad: &mut Vec<FieldProblem>) -> Vec<String> {
    if list.len() > MAX_PHOTOS {
        bad.push(FieldProblem::new(field, format!("at most {MAX_PHOTOS} photos")));
    }
    for (i, p) in list.iter().enumerate() {
        let ok = (p.starts_with("https://") || p.starts_with("/uploads/")) && p.len() <= 512 && !p.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            bad.push(FieldProblem::new(format!("{field}[{i}]"), "must be an https:// URL or an upload's /uploads/ path"));
        }
    }
    list.to_vec()
}

fn price(field: &str, fen: i64, bad: &mut Vec<FieldProblem>) -> i64 {
    if !(1..=MAX_PRICE_FEN).contains(&fen) {
        bad.push(FieldProblem::new(field, format!("must be 1-{MAX_PRICE_FEN} fen")));
    }
    fen
}

fn done<T>(bad: Vec<FieldProblem>, value: T) -> Result<T> {
    if bad.is_empty() { Ok(value) } else { Err(CoreError::Fields(bad)) }
}

/// A flower as its merchant lists it.
#[derive(Debug, Clone, Default)]
pub struct ProductInput {
    pub title: String,
    pub description: String,
    pub price_fen: i64,
    pub stock: i64,
    pub photos: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSpec {
    pub title: String,
    pub description: String,
    pub price_fen: i64,
    pub stock: u32,
    pub photos: Vec<String>,
}

/// Most stock of one product.
pub const MAX_STOCK: i64 = 1_000_000;

pub fn product(input: ProductInput, filter: Option<&WordFilter>) -> Result<ProductSpec> {
    let mut bad = Vec::new();
    let title = text("title", &input.title, 1, 60, filter, &mut bad);
    let description = text("description", &input.description, 0, 2000, filter, &mut bad);
    let price_fen = price("price_fen", input.price_fen, &mut bad);
    if !(0..=MAX_STOCK).contains(&input.stock) {
        bad.push(FieldProblem::new("stock", format!("must be 0-{MAX_STOCK}")));
    }
    let photos = photos("photos", &input.photos, &mut bad);
    done(bad, ProductSpec { title, description, price_fen, stock: input.stock.clamp(0, MAX_STOCK) as u32, photos })
}

/// A farm animal to claim (动物认领), as its merchant lists it.
#[derive(Debug, Clone, Default)]
pub struct AnimalInput {
    pub species: String,
    pub name: String,
    pub photos: Vec<String>,
    pub story: String,
    /// Per period.
    pub price_fen: i64,
    pub period_days: i64,
    /// Claimants at once.
    pub slots: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnimalSpec {
    pub species: String,
    pub name: String,
    pub photos: Vec<String>,
    pub story: String,
    pub price_fen: i64,
    pub period_days: u16,
    pub slots: u32,
}

pub fn animal(input: AnimalInput, filter: Option<&WordFilter>) -> Result<AnimalSpec> {
    let mut bad = Vec::new();
    let species = text("species", &input.species, 1, 32, filter, &mut bad);
    let name = text("name", &input.name, 1, 32, filter, &mut bad);
    let photos = photos("photos", &input.photos, &mut bad);
    let story = text("story", &input.story, 0, 2000, filter, &mut bad);
    let price_fen = price("price_fen", input.price_fen, &mut bad);
    if !(7..=365).contains(&input.period_days) {
        bad.push(FieldProblem::new("period_days", "must be 7-365"));
    }
    if !(1..=10_000).contains(&input.slots) {
        bad.push(FieldProblem::new("slots", "must be 1-10000"));
    }
    done(bad, AnimalSpec { species, name, photos, story, price_fen, period_days: input.period_days.clamp(7, 365) as u16, slots: input.slots.clamp(1, 10_000) as u32 })
}

/// How many periods a claim (or its renewal) buys: 1-12.
pub fn claim_periods(periods: i64) -> Result<u8> {
    if (1..=12).contains(&periods) {
        Ok(periods as u8)
    } else {
        Err(CoreError::Fields(vec![FieldProblem::new("periods", "must be 1-12")]))
    }
}

/// When a delivery arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliverySlot {
    Morning,
    Afternoon,
    Evening,
}

impl DeliverySlot {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliverySlot::Morning => "morning",
            DeliverySlot::Afternoon => "afternoon",
            DeliverySlot::Evening => "evening",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "morning" => DeliverySlot::Morning,
            "afternoon" => DeliverySlot::Afternoon,
            "evening" => DeliverySlot::Evening,
            _ => return None,
        })
    }
}

/// A flower order as the buyer sent it.
#[derive(Debug, Clone, Default)]
pub struct OrderInput {
    /// (product id, quantity).
    pub items: Vec<(i64, i64)>,
    pub recipient_name: String,
    pub recipient_phone: String,
    pub address: String,
    pub deliver_on: String,
    pub slot: String,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSpec {
    /// (product id, quantity), one line per product.
    pub items: Vec<(i64, u32)>,
    pub recipient_name: String,
    /// E.164.
    pub recipient_phone: String,
    pub address: String,
    /// The business day, as days since 1970-01-01.
    pub deliver_on: i64,
    pub slot: DeliverySlot,
    pub note: String,
}

/// Validates an order. `today` is the business day now (`BusinessZone::day`): the delivery day
/// is today up to `MAX_DELIVERY_DAYS_AHEAD` days ahead.
pub fn order(input: OrderInput, today: i64, filter: Option<&WordFilter>) -> Result<OrderSpec> {
    let mut bad = Vec::new();
    if input.items.is_empty() || input.items.len() > MAX_LINES {
        bad.push(FieldProblem::new("items", format!("must hold 1-{MAX_LINES} products")));
    }
    let mut items: Vec<(i64, u32)> = Vec::new();
    for (i, (product, quantity)) in input.items.iter().enumerate() {
        if *product <= 0 {
            bad.push(FieldProblem::new(format!("items[{i}].product"), "must be a product id"));
        }
        if !(1..=i64::from(MAX_QUANTITY)).contains(quantity) {
            bad.push(FieldProblem::new(format!("items[{i}].quantity"), format!("must be 1-{MAX_QUANTITY}")));
        }
        if items.iter().any(|(p, _)| p == product) {
            bad.push(FieldProblem::new(format!("items[{i}].product"), "is listed twice: give one line a larger quantity"));
        }
        items.push((*product, (*quantity).clamp(0, i64::from(MAX_QUANTITY)) as u32));
    }
    let recipient_name = text("recipient.name", &input.recipient_name, 1, 32, filter, &mut bad);
    let recipient_phone = match crate::phone::phone(input.recipient_phone.trim()) {
        Ok(p) => p,
        Err(CoreError::Fields(f)) => {
            bad.extend(f.into_iter().map(|p| FieldProblem::new("recipient.phone", p.problem)));
            String::new()
        }
        Err(e) => return Err(e),
    };
    let address = text("recipient.address", &input.address, 1, 200, filter, &mut bad);
    let deliver_on = match crate::day::Day::parse(input.deliver_on.trim()) {
        Ok(d) if (today..=today + MAX_DELIVERY_DAYS_AHEAD).contains(&i64::from(d.days())) => i64::from(d.days()),
        Ok(_) => {
            bad.push(FieldProblem::new("deliver_on", format!("must be today up to {MAX_DELIVERY_DAYS_AHEAD} days ahead")));
            0
        }
        Err(_) => {
            bad.push(FieldProblem::new("deliver_on", "must be a date YYYY-MM-DD"));
            0
        }
    };
    let slot = DeliverySlot::parse(input.slot.trim());
    if slot.is_none() {
        bad.push(FieldProblem::new("slot", "must be morning, afternoon or evening"));
    }
    let note = text("note", &input.note, 0, 200, filter, &mut bad);
    done(bad, ())?;
    Ok(OrderSpec { items, recipient_name, recipient_phone, address, deliver_on, slot: slot.unwrap_or(DeliverySlot::Morning), note })
}

/// The amount of an order from its lines' own prices (fen) and quantities. `invalid` past
/// `MAX_AMOUNT_FEN` (no overflow whatever the input).
pub fn amount(lines: &[(i64, u32)]) -> Result<i64> {
    let mut total: i64 = 0;
    for (price, quantity) in lines {
        let line = price.checked_mul(i64::from(*quantity)).ok_or_else(|| CoreError::invalid("the order's amount is too large"))?;
        total = total.checked_add(line).ok_or_else(|| CoreError::invalid("the order's amount is too large"))?;
    }
    if total <= 0 || total > MAX_AMOUNT_FEN {
        return Err(CoreError::invalid(format!("an order's amount must be 1-{MAX_AMOUNT_FEN} fen")));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: CoreError) -> Vec<String> {
        let CoreError::Fields(f) = e else { panic!("fields: {e:?}") };
        f.into_iter().map(|p| p.field).collect()
    }

    #[test]
    fn products_name_every_bad_field_and_are_screened() {
        let f = WordFilter::new(vec!["赌博".into()]).unwrap();
        let e = product(ProductInput { title: "".into(), description: "赌博玫瑰".into(), price_fen: 0, stock: -1, photos: vec!["http://x".into()] }, Some(&f)).unwrap_err();
        assert_eq!(fields(e), vec!["title", "description", "price_fen", "stock", "photos[0]"]);
        let ok = product(ProductInput { title: " 红玫瑰 ".into(), description: "".into(), price_fen: 9900, stock: 5, photos: vec!["/uploads/ab.jpg".into(), "https://img.example/r.jpg".into()] }, Some(&f)).unwrap();
        assert_eq!((ok.title.as_str(), ok.stock, ok.photos.len()), ("红玫瑰", 5, 2));
        let many = vec!["https://a/b.jpg".to_owned(); 10];
        assert_eq!(fields(product(ProductInput { title: "t".into(), price_fen: 1, photos: many, ..Default::default() }, None).unwrap_err()), vec!["photos"]);
    }

    #[test]
    fn animals_and_claims() {
        let e = animal(AnimalInput { species: "".into(), name: "小羊".into(), price_fen: 100, period_days: 6, slots: 0, ..Default::default() }, None).unwrap_err();
        assert_eq!(fields(e), vec!["species", "period_days", "slots"]);
        let a = animal(AnimalInput { species: "羊".into(), name: "咩咩".into(), story: "在洱海边长大".into(), price_fen: 9900, period_days: 30, slots: 3, photos: vec![] }, None).unwrap();
        assert_eq!((a.period_days, a.slots), (30, 3));
        assert_eq!(claim_periods(12).unwrap(), 12);
        assert!(claim_periods(0).is_err() && claim_periods(13).is_err());
    }

    #[test]
    fn orders_name_every_bad_field() {
        let today = crate::day::Day::parse("2026-12-01").unwrap().days() as i64;
        let good = OrderInput {
            items: vec![(1, 2), (2, 1)],
            recipient_name: "王小花".into(),
            recipient_phone: "+8613812345678".into(),
            address: "大理古城人民路 1 号".into(),
            deliver_on: "2026-12-02".into(),
            slot: "morning".into(),
            note: "请放门口".into(),
        };
        let o = order(good.clone(), today, None).unwrap();
        assert_eq!((o.items.clone(), o.slot, o.deliver_on - today), (vec![(1, 2), (2, 1)], DeliverySlot::Morning, 1));
        let e = order(OrderInput { items: vec![(1, 0), (1, 100), (-3, 1)], recipient_phone: "138".into(), deliver_on: "2026-11-30".into(), slot: "night".into(), ..good.clone() }, today, None).unwrap_err();
        assert_eq!(fields(e), vec!["items[0].quantity", "items[1].quantity", "items[1].product", "items[2].product", "recipient.phone", "deliver_on", "slot"]);
        assert_eq!(fields(order(OrderInput { items: vec![], ..good.clone() }, today, None).unwrap_err()), vec!["items"]);
        assert_eq!(fields(order(OrderInput { deliver_on: "2027-02-01".into(), ..good.clone() }, today, None).unwrap_err()), vec!["deliver_on"], "more than 60 days ahead");
        let f = WordFilter::new(vec!["赌博".into()]).unwrap();
        assert_eq!(fields(order(OrderInput { note: "赌博".into(), ..good }, today, Some(&f)).unwrap_err()), vec!["note"]);
    }

    #[test]
    fn amounts_come_from_prices_without_overflow() {
        assert_eq!(amount(&[(9900, 2), (500, 1)]).unwrap(), 20_300);
        assert!(amount(&[(i64::MAX, 2)]).is_err());
        assert!(amount(&[(MAX_PRICE_FEN, 99), (MAX_PRICE_FEN, 99)]).is_err(), "past the order's limit");
        assert!(amount(&[]).is_err());
        // WeChat Pay's int32: 2^31 - 1 fen is an amount, 2^31 is not.
        assert_eq!(amount(&[(MAX_PRICE_FEN, 21), (47_483_647, 1)]).unwrap(), 2_147_483_647);
        assert!(amount(&[(MAX_PRICE_FEN, 21), (47_483_648, 1)]).is_err(), "2^31 fen");
    }
}
