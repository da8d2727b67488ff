//! What an account is: the public profile, the privacy settings, consent, and what an update
//! may change. Values here are already valid (see `rules` for how inputs become them).

use crate::ids::UserId;

/// The nickname an erased account shows.
pub const ERASED_NICKNAME: &str = "已注销用户";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gender {
    Female,
    Male,
    Other,
    #[default]
    Unspecified,
}

impl Gender {
    pub const ALL: [&'static str; 4] = ["female", "male", "other", "unspecified"];
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::Other => "other",
            Gender::Unspecified => "unspecified",
        }
    }
    pub fn from_str(s: &str) -> Option<Self> {
        Some(match s {
            "female" => Gender::Female,
            "male" => Gender::Male,
            "other" => Gender::Other,
            "unspecified" => Gender::Unspecified,
            _ => return None,
        })
    }
}

/// Who a privacy setting lets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Everyone,
    /// The users I share a conversation with.
    Contacts,
    Nobody,
}

impl Audience {
    pub const ALL: [&'static str; 3] = ["everyone", "contacts", "nobody"];
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Everyone => "everyone",
            Audience::Contacts => "contacts",
            Audience::Nobody => "nobody",
        }
    }
    pub fn from_str(s: &str) -> Option<Self> {
        Some(match s {
            "everyone" => Audience::Everyone,
            "contacts" => Audience::Contacts,
            "nobody" => Audience::Nobody,
            _ => return None,
        })
    }
    /// Whether someone with this relation to me gets in.
    pub fn admits(self, contact: bool) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::Contacts => contact,
            Audience::Nobody => false,
        }
    }
}

/// A user's privacy settings. The defaults are the product's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Who may open a direct conversation with me.
    pub dm_from: Audience,
    /// Who may add me to a group.
    pub group_add_from: Audience,
    /// Who sees whether I am online.
    pub presence_to: Audience,
    /// Whether companion matching may propose me.
    pub matchable: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { dm_from: Audience::Everyone, group_add_from: Audience::Contacts, presence_to: Audience::Contacts, matchable: true }
    }
}

/// The public profile: what anyone may see of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: UserId,
    pub nickname: String,
    pub avatar_url: Option<String>,
    pub gender: Gender,
    pub birth_year: Option<u16>,
    pub bio: String,
    pub tags: Vec<String>,
    pub created_at: i64,
    /// Erased accounts keep their id (messages point at it) and nothing else.
    pub erased: bool,
}

/// The consent a user gave to a version of the privacy policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub version: String,
    pub at: i64,
}

/// Everything of my own account that `GET /me` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub profile: Profile,
    pub provider: String,
    pub role: crate::model::Role,
    pub last_seen: Option<i64>,
    /// The masked form only (`138****5678`).
    pub phone_masked: Option<String>,
    pub consent: Option<Consent>,
    pub banned: bool,
}

/// How staff look a user up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountQuery {
    /// By phone number, through its blind index.
    PhoneIndex(String),
    /// Nicknames containing the text.
    Nickname(String),
    /// The user with this id, or nicknames containing the digits.
    IdOrNickname(UserId, String),
}

/// A change to a profile, already valid. `None` leaves a field as it is; for the clearable
/// fields `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfilePatch {
    pub nickname: Option<String>,
    pub avatar_url: Option<Option<String>>,
    pub gender: Option<Gender>,
    pub birth_year: Option<Option<u16>>,
    pub bio: Option<String>,
    pub tags: Option<Vec<String>>,
}

impl ProfilePatch {
    pub fn apply(&self, p: &mut Profile) {
        if let Some(n) = &self.nickname {
            p.nickname = n.clone();
        }
        if let Some(a) = &self.avatar_url {
            p.avatar_url = a.clone();
        }
        if let Some(g) = self.gender {
            p.gender = g;
        }
        if let Some(b) = self.birth_year {
            p.birth_year = b;
        }
        if let Some(b) = &self.bio {
            p.bio = b.clone();
        }
        if let Some(t) = &self.tags {
            p.tags = t.clone();
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettingsPatch {
    pub dm_from: Option<Audience>,
    pub group_add_from: Option<Audience>,
    pub presence_to: Option<Audience>,
    pub matchable: Option<bool>,
}

impl SettingsPatch {
    pub fn apply(&self, s: &mut Settings) {
        if let Some(v) = self.dm_from {
            s.dm_from = v;
        }
        if let Some(v) = self.group_add_from {
            s.group_add_from = v;
        }
        if let Some(v) = self.presence_to {
            s.presence_to = v;
        }
        if let Some(v) = self.matchable {
            s.matchable = v;
        }
    }
}

/// A phone number as stored: sealed, indexed, masked. The clear number is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPhone {
    /// AES-256-GCM: nonce (12 bytes) then ciphertext and tag, base64.
    pub cipher: String,
    /// HMAC-SHA256 of the E.164 number under the index key, hex: equal numbers, equal index.
    pub index: String,
    pub masked: String,
}

/// How two users stand to each other, for the privacy rules: the target's settings, whether
/// either blocked the other, whether they share a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relation {
    pub target_settings: Settings,
    pub blocked: bool,
    pub contacts: bool,
}

impl Relation {
    pub fn may_dm(&self) -> bool {
        !self.blocked && self.target_settings.dm_from.admits(self.contacts)
    }
    pub fn may_add_to_group(&self) -> bool {
        !self.blocked && self.target_settings.group_add_from.admits(self.contacts)
    }
    pub fn may_see_presence(&self) -> bool {
        !self.blocked && self.target_settings.presence_to.admits(self.contacts)
    }
}

/// One entry of my block list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub user: UserId,
    pub at: i64,
}

/// Everything stored about a user, for `GET /me/export`.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub account: Account,
    pub settings: Settings,
    pub phone: Option<String>,
    pub blocks: Vec<Block>,
    pub conversations: Vec<crate::model::Conversation>,
    pub messages: Vec<crate::model::Message>,
}
