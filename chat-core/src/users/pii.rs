//! Users' personal data at rest: a phone number sealed and blindly indexed with the data key
//! (`crate::sealing::DataKey`, the kernel's).

use super::model::SealedPhone;
use crate::error::CoreError;
use crate::ids::UserId;
pub use crate::sealing::DataKey;

/// A phone number (valid E.164) as stored.
pub fn seal_phone(key: &DataKey, user: UserId, e164: &str) -> Result<SealedPhone, CoreError> {
    Ok(SealedPhone { cipher: key.seal(user, "phone", e164)?, index: key.index("phone", e164), masked: crate::phone::mask_phone(e164) })
}
