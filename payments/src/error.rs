//! What can go wrong setting a provider up: reading and writing its keys, building its client.
//! Once running, providers answer the domain's `CoreError` and `NotifyError`.

use crate::wechat::WechatError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Key { path: PathBuf, source: WechatError },
    #[error("the APIv3 key must be 32 ASCII characters")]
    ApiV3Key,
    #[error("no platform key (certificate or PUB_KEY_ID_…) is configured: no answer or callback could be verified")]
    NoPlatformKey,
    #[error("the API base {0:?} is not an http(s) URL")]
    ApiBase(String),
    #[error("the HTTP client cannot start: {0}")]
    Client(String),
    #[error("no randomness: {0}")]
    Randomness(String),
}

impl SetupError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SetupError {
        let path = path.into();
        move |source| SetupError::Io { path, source }
    }
}
