//! The rules of an account's fields: inputs (strings as the edge received them) become valid
//! values here, or a list naming every bad field. Pure: no I/O, the clock and the word filter
//! are passed in.

use super::model::*;
use crate::error::{CoreError, FieldProblem};
use crate::moderation::WordFilter;

pub const NICKNAME_MAX: usize = 32;
pub const BIO_MAX: usize = 500;
pub const TAGS_MAX: usize = 10;
pub const TAG_MAX: usize = 16;
pub const URL_MAX: usize = 512;
pub const OLDEST_BIRTH_YEAR: i64 = 1900;

/// A profile change as the edge received it. `Some(None)` asks to clear a clearable field.
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    pub nickname: Option<String>,
    pub avatar_url: Option<Option<String>>,
    pub gender: Option<String>,
    pub birth_year: Option<Option<i64>>,
    pub bio: Option<String>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct SettingsInput {
    pub dm_from: Option<String>,
    pub group_add_from: Option<String>,
    pub presence_to: Option<String>,
    pub matchable: Option<bool>,
}

/// Screens user-written text with the banned-word filter: a problem for `field` when it hits.
fn screen(field: &str, text: &str, filter: &WordFilter, out: &mut Vec<FieldProblem>) {
    if !filter.matches(text).is_empty() {
        out.push(FieldProblem::new(field, "contains words that are not allowed (含有不允许的词语)"));
    }
}

/// Checks a short single-line text: trimmed, 1..=max characters, no control characters.
fn short_text(field: &str, raw: &str, max: usize, out: &mut Vec<FieldProblem>) -> Option<String> {
    let t = raw.trim();
    let n = t.chars().count();
    if n == 0 || n > max {
        out.push(FieldProblem::new(field, format!("must be 1-{max} characters")));
        return None;
    }
    if let Some(p) = crate::text::required_problem(t, crate::text::Lines::One) {
        out.push(FieldProblem::new(field, p));
        return None;
    }
    Some(t.to_owned())
}

/// A photo or avatar address: an `https://` URL, or a path of this server's uploads
/// (`/uploads/...`), at most 512 characters, no spaces or control characters.
pub fn photo_url(field: &str, raw: &str, out: &mut Vec<FieldProblem>) -> Option<String> {
    let ok_prefix = raw.strip_prefix("https://").is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        || raw.strip_prefix("/uploads/").is_some_and(|rest| !rest.is_empty());
    if raw.len() > URL_MAX || !ok_prefix || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        out.push(FieldProblem::new(field, format!("must be an https:// URL or an upload's /uploads/ path, at most {URL_MAX} characters")));
        return None;
    }
    Some(raw.to_owned())
}

/// Validates a profile change; `this_year` bounds the birth year.
pub fn profile_patch(input: ProfileInput, filter: &WordFilter, this_year: i64) -> Result<ProfilePatch, CoreError> {
    let mut bad = Vec::new();
    let mut patch = ProfilePatch::default();
    if let Some(n) = &input.nickname {
        if let Some(n) = short_text("nickname", n, NICKNAME_MAX, &mut bad) {
            screen("nickname", &n, filter, &mut bad);
            if n == ERASED_NICKNAME {
                bad.push(FieldProblem::new("nickname", "is reserved"));
            }
            patch.nickname = Some(n);
        }
    }
    if let Some(a) = &input.avatar_url {
        patch.avatar_url = match a {
            None => Some(None),
            Some(a) => photo_url("avatar_url", a, &mut bad).map(Some),
        };
    }
    if let Some(g) = &input.gender {
        match Gender::from_str(g) {
            Some(g) => patch.gender = Some(g),
            None => bad.push(FieldProblem::new("gender", "must be one of female, male, other, unspecified")),
        }
    }
    if let Some(b) = input.birth_year {
        match b {
            None => patch.birth_year = Some(None),
            Some(y) if (OLDEST_BIRTH_YEAR..=this_year).contains(&y) => patch.birth_year = Some(Some(y as u16)),
            Some(_) => bad.push(FieldProblem::new("birth_year", format!("must be a year from {OLDEST_BIRTH_YEAR} to {this_year}"))),
        }
    }
    if let Some(b) = &input.bio {
        let b = b.trim();
        if b.chars().count() > BIO_MAX {
            bad.push(FieldProblem::new("bio", format!("must be at most {BIO_MAX} characters")));
        } else if let Some(p) = crate::text::problem(b, crate::text::Lines::Many) {
            bad.push(FieldProblem::new("bio", p));
        } else {
            screen("bio", b, filter, &mut bad);
            patch.bio = Some(b.to_owned());
        }
    }
    if let Some(tags) = &input.tags {
        if tags.len() > TAGS_MAX {
            bad.push(FieldProblem::new("tags", format!("at most {TAGS_MAX} tags")));
        } else {
            let mut out: Vec<String> = Vec::new();
            for (i, t) in tags.iter().enumerate() {
                let field = format!("tags[{i}]");
                if let Some(t) = short_text(&field, t, TAG_MAX, &mut bad) {
                    screen(&field, &t, filter, &mut bad);
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
            }
            patch.tags = Some(out);
        }
    }
    if bad.is_empty() { Ok(patch) } else { Err(CoreError::Fields(bad)) }
}

pub fn settings_patch(input: SettingsInput) -> Result<SettingsPatch, CoreError> {
    let mut bad = Vec::new();
    let mut audience = |field: &str, v: &Option<String>| -> Option<Audience> {
        let v = v.as_ref()?;
        let a = Audience::from_str(v);
        if a.is_none() {
            bad.push(FieldProblem::new(field, "must be one of everyone, contacts, nobody"));
        }
        a
    };
    let patch = SettingsPatch {
        dm_from: audience("dm_from", &input.dm_from),
        group_add_from: audience("group_add_from", &input.group_add_from),
        presence_to: audience("presence_to", &input.presence_to),
        matchable: input.matchable,
    };
    if bad.is_empty() { Ok(patch) } else { Err(CoreError::Fields(bad)) }
}

// Phone numbers are a kernel value (`crate::phone`), used by merchants and orders too.
pub use crate::phone::{mask_phone, phone};

/// The consent version a user sends must be the current policy's.
pub fn consent_version(sent: &str, current: &str) -> Result<(), CoreError> {
    if sent == current {
        Ok(())
    } else {
        Err(CoreError::Fields(vec![FieldProblem::new("version", format!("must be the current privacy policy version ({current})"))]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> WordFilter {
        WordFilter::new(vec!["badword".into()]).unwrap()
    }

    fn fields(e: CoreError) -> Vec<String> {
        match e {
            CoreError::Fields(f) => f.into_iter().map(|p| p.field).collect(),
            other => panic!("expected fields, got {other:?}"),
        }
    }

    #[test]
    fn a_good_patch_is_kept_trimmed() {
        let p = profile_patch(
            ProfileInput {
                nickname: Some("  小明 ".into()),
                gender: Some("female".into()),
                birth_year: Some(Some(1990)),
                bio: Some("爱旅行".into()),
                tags: Some(vec!["徒步".into(), "徒步".into(), "摄影".into()]),
                avatar_url: Some(Some("/uploads/abc.jpg".into())),
            },
            &filter(),
            2026,
        )
        .unwrap();
        assert_eq!(p.nickname.as_deref(), Some("小明"));
        assert_eq!(p.tags.unwrap(), vec!["徒步", "摄影"]);
        assert_eq!(p.birth_year, Some(Some(1990)));
        assert_eq!(p.avatar_url, Some(Some("/uploads/abc.jpg".into())));
    }

    #[test]
    fn every_bad_field_is_named() {
        let e = profile_patch(
            ProfileInput {
                nickname: Some("x".repeat(33)),
                gender: Some("robot".into()),
                birth_year: Some(Some(2100)),
                bio: Some("a badword here".into()),
                tags: Some(vec!["ok".into(), "".into(), "y".repeat(17)]),
                avatar_url: Some(Some("http://plain.example/a.jpg".into())),
            },
            &filter(),
            2026,
        )
        .unwrap_err();
        assert_eq!(fields(e), vec!["nickname", "avatar_url", "gender", "birth_year", "bio", "tags[1]", "tags[2]"]);
    }

    #[test]
    fn screening_names_the_field() {
        let e = profile_patch(ProfileInput { nickname: Some("BadWord".into()), ..Default::default() }, &filter(), 2026).unwrap_err();
        assert_eq!(fields(e), vec!["nickname"]);
        let e = profile_patch(ProfileInput { tags: Some(vec!["fine".into(), "badword".into()]), ..Default::default() }, &filter(), 2026)
            .unwrap_err();
        assert_eq!(fields(e), vec!["tags[1]"]);
    }

    #[test]
    fn too_many_tags() {
        let tags = (0..11).map(|i| format!("t{i}")).collect();
        let e = profile_patch(ProfileInput { tags: Some(tags), ..Default::default() }, &filter(), 2026).unwrap_err();
        assert_eq!(fields(e), vec!["tags"]);
    }

    #[test]
    fn settings_take_only_known_audiences() {
        let p = settings_patch(SettingsInput { dm_from: Some("nobody".into()), matchable: Some(false), ..Default::default() }).unwrap();
        assert_eq!(p.dm_from, Some(Audience::Nobody));
        assert_eq!(p.matchable, Some(false));
        let e = settings_patch(SettingsInput { presence_to: Some("friends".into()), group_add_from: Some("x".into()), ..Default::default() })
            .unwrap_err();
        assert_eq!(fields(e), vec!["group_add_from", "presence_to"]);
    }

    #[test]
    fn phones() {
        assert!(phone("+8613812345678").is_ok());
        assert!(phone("+447700900123").is_ok());
        for bad in ["8613812345678", "+86 13812345678", "+8612812345678", "+861381234567", "+0123456789", "+1234567", "+１３８"] {
            assert!(phone(bad).is_err(), "{bad}");
        }
        assert_eq!(mask_phone("+8613812345678"), "138****5678");
        assert_eq!(mask_phone("+447700900123"), "+447*****0123");
    }

    #[test]
    fn audiences_admit() {
        let rel = |s: Settings, blocked, contacts| Relation { target_settings: s, blocked, contacts };
        let d = Settings::default();
        assert!(rel(d, false, false).may_dm());
        assert!(!rel(d, true, true).may_dm());
        assert!(!rel(d, false, false).may_add_to_group());
        assert!(rel(d, false, true).may_add_to_group());
        assert!(!rel(d, false, false).may_see_presence());
        let nobody = Settings { presence_to: Audience::Nobody, ..d };
        assert!(!rel(nobody, false, true).may_see_presence());
    }
}
