//! The rules of the merchants area, pure: categories, the unified social credit code
//! (统一社会信用代码, GB 32100-2015) with its check character, an application's and a lead's
//! fields (every bad one named, user-written text screened), and the review state machine.

use crate::error::{CoreError, FieldProblem, Result};
use crate::moderation::WordFilter;

/// What a merchant sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Farm animals to claim (动物认领).
    Farm,
    /// Flowers (送花服务).
    Florist,
    Travel,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Farm => "farm",
            Category::Florist => "florist",
            Category::Travel => "travel",
        }
    }
    pub fn from_str(s: &str) -> Option<Self> {
        Some(match s {
            "farm" => Category::Farm,
            "florist" => Category::Florist,
            "travel" => Category::Travel,
            _ => return None,
        })
    }
}

/// The 31 characters a unified social credit code is written in (no I, O, S, V, Z), in the
/// order of their values.
const USCC_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// The check character's value of a code's first 17 values (weights 3^i mod 31).
fn check_value(values: &[u32]) -> u32 {
    let mut weight = 1u32;
    let mut sum = 0u32;
    for v in values {
        sum += v * weight;
        weight = weight * 3 % 31;
    }
    (31 - sum % 31) % 31
}

/// A unified social credit code: 18 characters of `USCC_CHARS`, the last the check character
/// of the first 17 (weights 3^i mod 31, GB 32100-2015 §5). Stored sealed like a phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditCode(String);

impl CreditCode {
    pub fn parse(raw: &str) -> std::result::Result<Self, &'static str> {
        let code = raw.trim().to_ascii_uppercase();
        let b = code.as_bytes();
        if b.len() != 18 {
            return Err("must be 18 characters");
        }
        let mut values = [0u32; 18];
        for (i, c) in b.iter().enumerate() {
            values[i] = USCC_CHARS.iter().position(|x| x == c).ok_or("may only use 0-9 and A-Y without I, O, S, V, Z")? as u32;
        }
        if check_value(&values[..17]) != values[17] {
            return Err("the check character does not match (not a valid unified social credit code)");
        }
        Ok(CreditCode(code))
    }

    /// A valid code for test data and load runs: `91350100MA` and `n` in 7 digits, then its
    /// check character (distinct `n`, distinct codes).
    pub fn numbered(n: u32) -> Self {
        let body = format!("91350100MA{:07}", n % 10_000_000);
        let values: Vec<u32> = body.bytes().map(|c| USCC_CHARS.iter().position(|x| *x == c).unwrap_or(0) as u32).collect();
        let check = USCC_CHARS[check_value(&values) as usize] as char;
        CreditCode(format!("{body}{check}"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An application as the edge received it.
#[derive(Debug, Clone, Default)]
pub struct ApplicationInput {
    pub name: String,
    pub category: String,
    pub license_no: String,
    pub contact_name: String,
    pub contact_phone: String,
}

/// A valid application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub name: String,
    pub category: Category,
    pub license_no: CreditCode,
    pub contact_name: String,
    /// E.164.
    pub contact_phone: String,
}

fn text(field: &str, raw: &str, max: usize, bad: &mut Vec<FieldProblem>) -> String {
    let t = raw.trim();
    let n = t.chars().count();
    if n == 0 || n > max {
        bad.push(FieldProblem::new(field, format!("must be 1-{max} characters")));
    } else if let Some(p) = crate::text::required_problem(t, crate::text::Lines::One) {
        bad.push(FieldProblem::new(field, p));
    }
    t.to_owned()
}

/// Adds a problem for `field` if the banned-word filter finds words in `value`.
fn screen(field: &str, value: &str, filter: Option<&WordFilter>, bad: &mut Vec<FieldProblem>) {
    if filter.is_some_and(|f| !f.matches(value).is_empty()) {
        bad.push(FieldProblem::new(field, "contains words that are not allowed"));
    }
}

fn phone_field(field: &str, raw: &str, bad: &mut Vec<FieldProblem>) -> Result<Option<String>> {
    match crate::phone::phone(raw.trim()) {
        Ok(p) => Ok(Some(p)),
        Err(CoreError::Fields(f)) => {
            bad.extend(f.into_iter().map(|p| FieldProblem::new(field, p.problem)));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn category_field(raw: &str, bad: &mut Vec<FieldProblem>) -> Option<Category> {
    let c = Category::from_str(raw.trim());
    if c.is_none() {
        bad.push(FieldProblem::new("category", "must be one of farm, florist, travel"));
    }
    c
}

/// Validates an application, naming every bad field.
pub fn application(input: ApplicationInput, filter: Option<&WordFilter>) -> Result<Application> {
    let mut bad = Vec::new();
    let name = text("name", &input.name, 64, &mut bad);
    screen("name", &name, filter, &mut bad);
    let contact_name = text("contact_name", &input.contact_name, 32, &mut bad);
    screen("contact_name", &contact_name, filter, &mut bad);
    let category = category_field(&input.category, &mut bad);
    let license_no = CreditCode::parse(&input.license_no).map_err(|p| bad.push(FieldProblem::new("license_no", p))).ok();
    let contact_phone = phone_field("contact_phone", &input.contact_phone, &mut bad)?;
    match (category, license_no, contact_phone) {
        (Some(category), Some(license_no), Some(contact_phone)) if bad.is_empty() => {
            Ok(Application { name, category, license_no, contact_name, contact_phone })
        }
        _ => Err(CoreError::Fields(bad)),
    }
}

/// A lead from the website as the edge received it (the visitor is not logged in).
#[derive(Debug, Clone, Default)]
pub struct LeadInput {
    pub company: String,
    pub contact_name: String,
    pub phone: String,
    pub category: String,
    pub city: String,
    pub message: String,
}

/// A valid lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub company: String,
    pub contact_name: String,
    /// E.164.
    pub phone: String,
    pub category: Category,
    pub city: String,
    /// May be empty.
    pub message: String,
}

/// Most characters of a lead's message.
pub const LEAD_MESSAGE_CHARS: usize = 500;

/// Validates a lead, naming every bad field; its texts pass the banned-word screen.
pub fn lead(input: LeadInput, filter: Option<&WordFilter>) -> Result<Lead> {
    let mut bad = Vec::new();
    let company = text("company", &input.company, 64, &mut bad);
    screen("company", &company, filter, &mut bad);
    let contact_name = text("contact_name", &input.contact_name, 32, &mut bad);
    screen("contact_name", &contact_name, filter, &mut bad);
    let phone = phone_field("phone", &input.phone, &mut bad)?;
    let category = category_field(&input.category, &mut bad);
    let city = text("city", &input.city, 32, &mut bad);
    screen("city", &city, filter, &mut bad);
    let message = input.message.trim().to_owned();
    if message.chars().count() > LEAD_MESSAGE_CHARS {
        bad.push(FieldProblem::new("message", format!("must be at most {LEAD_MESSAGE_CHARS} characters")));
    } else if let Some(p) = crate::text::problem(&message, crate::text::Lines::Many) {
        bad.push(FieldProblem::new("message", p));
    }
    screen("message", &message, filter, &mut bad);
    match (phone, category) {
        (Some(phone), Some(category)) if bad.is_empty() => Ok(Lead { company, contact_name, phone, category, city, message }),
        _ => Err(CoreError::Fields(bad)),
    }
}

/// A reason given by staff (a rejection, a suspension, a lead's note): 1-500 characters.
pub fn reason(field: &str, raw: &str) -> Result<String> {
    let r = raw.trim();
    let n = r.chars().count();
    if n == 0 || n > 500 {
        return Err(CoreError::Fields(vec![FieldProblem::new(field, "must be 1-500 characters")]));
    }
    if let Some(p) = crate::text::required_problem(r, crate::text::Lines::Many) {
        return Err(CoreError::Fields(vec![FieldProblem::new(field, p)]));
    }
    Ok(r.to_owned())
}

/// Where an application stands. `Pending` is the only open state: one per user at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplicationState {
    Pending,
    Approved,
    Rejected { reason: String },
}

impl ApplicationState {
    pub const ALL: [&'static str; 3] = ["pending", "approved", "rejected"];
    pub fn as_str(&self) -> &'static str {
        match self {
            ApplicationState::Pending => "pending",
            ApplicationState::Approved => "approved",
            ApplicationState::Rejected { .. } => "rejected",
        }
    }
    /// A review decision: only a pending application is decided, once. `conflict` otherwise.
    pub fn decide(&self, approve: bool, reason: Option<&str>) -> Result<ApplicationState> {
        if *self != ApplicationState::Pending {
            return Err(CoreError::Conflict(format!("the application is {} already", self.as_str())));
        }
        if approve {
            return Ok(ApplicationState::Approved);
        }
        Ok(ApplicationState::Rejected { reason: self::reason("reason", reason.unwrap_or(""))? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_codes_by_their_check_character() {
        for good in ["91350100M000100Y43", "91110000802100433B", "91110000802100433b"] {
            assert!(CreditCode::parse(good).is_ok(), "{good}");
        }
        assert_eq!(CreditCode::parse("91350100M000100Y44"), Err("the check character does not match (not a valid unified social credit code)"));
        for n in [0, 1, 42, 9_999_999] {
            let c = CreditCode::numbered(n);
            assert_eq!(CreditCode::parse(c.as_str()), Ok(c.clone()), "numbered codes are valid");
        }
        assert_ne!(CreditCode::numbered(1), CreditCode::numbered(2));
        assert!(CreditCode::parse("91350100M000100Y4").is_err(), "17 characters");
        assert!(CreditCode::parse("91350100I000100Y43").is_err(), "I is not in the alphabet");
    }

    #[test]
    fn every_bad_field_is_named() {
        let e = application(ApplicationInput {
            name: "".into(),
            category: "bakery".into(),
            license_no: "123".into(),
            contact_name: "王".into(),
            contact_phone: "13812345678".into(),
        }, None)
        .unwrap_err();
        let CoreError::Fields(f) = e else { panic!("fields") };
        let names: Vec<_> = f.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(names, vec!["name", "category", "license_no", "contact_phone"]);
        let ok = application(ApplicationInput {
            name: " 大理花坊 ".into(),
            category: "florist".into(),
            license_no: "91350100m000100y43".into(),
            contact_name: "王小花".into(),
            contact_phone: "+8613812345678".into(),
        }, None)
        .unwrap();
        assert_eq!((ok.name.as_str(), ok.category, ok.license_no.as_str()), ("大理花坊", Category::Florist, "91350100M000100Y43"));
    }

    #[test]
    fn applications_and_leads_are_screened() {
        let f = WordFilter::new(vec!["赌博".into()]).unwrap();
        let e = application(ApplicationInput {
            name: "赌博花坊".into(),
            category: "florist".into(),
            license_no: "91350100M000100Y43".into(),
            contact_name: "王小花".into(),
            contact_phone: "+8613812345678".into(),
        }, Some(&f))
        .unwrap_err();
        assert_eq!(e, CoreError::Fields(vec![FieldProblem::new("name", "contains words that are not allowed")]));
        let l = LeadInput {
            company: "大理花坊".into(),
            contact_name: "王小花".into(),
            phone: "+8613812345678".into(),
            category: "florist".into(),
            city: "大理".into(),
            message: "想开店, 不是赌博".into(),
        };
        let CoreError::Fields(f2) = lead(l.clone(), Some(&f)).unwrap_err() else { panic!("fields") };
        assert_eq!(f2.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(), vec!["message"]);
        let ok = lead(LeadInput { message: String::new(), ..l }, Some(&f)).unwrap();
        assert_eq!((ok.category, ok.phone.as_str()), (Category::Florist, "+8613812345678"));
        let CoreError::Fields(f3) = lead(LeadInput::default(), None).unwrap_err() else { panic!("fields") };
        assert_eq!(f3.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(), vec!["company", "contact_name", "phone", "category", "city"]);
    }

    #[test]
    fn a_review_decides_once() {
        let p = ApplicationState::Pending;
        assert_eq!(p.decide(true, None).unwrap(), ApplicationState::Approved);
        assert!(matches!(p.decide(false, None), Err(CoreError::Fields(_))), "a rejection needs its reason");
        let r = p.decide(false, Some("执照模糊")).unwrap();
        assert_eq!(r.as_str(), "rejected");
        assert!(matches!(r.decide(true, None), Err(CoreError::Conflict(_))));
        assert!(matches!(ApplicationState::Approved.decide(false, Some("x")), Err(CoreError::Conflict(_))));
    }
}
