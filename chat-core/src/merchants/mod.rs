//! The merchants area (issue 13), its first step: the rules of a merchant application, pure.
//! Categories, the unified social credit code (统一社会信用代码, GB 32100-2015) with its check
//! character, the application's fields and the review state machine. The port, the SQL and the
//! routes come next.

use crate::error::{CoreError, FieldProblem, Result};

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
        let mut weight = 1u32;
        let mut sum = 0u32;
        for v in &values[..17] {
            sum += v * weight;
            weight = weight * 3 % 31;
        }
        if (31 - sum % 31) % 31 != values[17] {
            return Err("the check character does not match (not a valid unified social credit code)");
        }
        Ok(CreditCode(code))
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
    if n == 0 || n > max || t.chars().any(char::is_control) {
        bad.push(FieldProblem::new(field, format!("must be 1-{max} characters without control characters")));
    }
    t.to_owned()
}

/// Validates an application, naming every bad field.
pub fn application(input: ApplicationInput) -> Result<Application> {
    let mut bad = Vec::new();
    let name = text("name", &input.name, 64, &mut bad);
    let contact_name = text("contact_name", &input.contact_name, 32, &mut bad);
    let category = Category::from_str(&input.category);
    if category.is_none() {
        bad.push(FieldProblem::new("category", "must be one of farm, florist, travel"));
    }
    let license_no = CreditCode::parse(&input.license_no).map_err(|p| bad.push(FieldProblem::new("license_no", p))).ok();
    let contact_phone = match crate::users::rules::phone(input.contact_phone.trim()) {
        Ok(p) => Some(p),
        Err(CoreError::Fields(f)) => {
            bad.extend(f.into_iter().map(|p| FieldProblem::new("contact_phone", p.problem)));
            None
        }
        Err(e) => return Err(e),
    };
    match (category, license_no, contact_phone) {
        (Some(category), Some(license_no), Some(contact_phone)) if bad.is_empty() => {
            Ok(Application { name, category, license_no, contact_name, contact_phone })
        }
        _ => Err(CoreError::Fields(bad)),
    }
}

/// Where an application stands. `Pending` is the only open state: one per user at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplicationState {
    Pending,
    Approved,
    Rejected { reason: String },
}

impl ApplicationState {
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
        let reason = reason.map(str::trim).unwrap_or("");
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(CoreError::Fields(vec![FieldProblem::new("reason", "must be 1-500 characters")]));
        }
        Ok(ApplicationState::Rejected { reason: reason.to_owned() })
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
        })
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
        })
        .unwrap();
        assert_eq!((ok.name.as_str(), ok.category, ok.license_no.as_str()), ("大理花坊", Category::Florist, "91350100M000100Y43"));
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
