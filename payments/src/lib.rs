//! Payment providers (issue 14). So far: WeChat Pay APIv3's cryptography (`wechat`), which
//! both the real client and the local provider of the embedded default use, so that
//! development exercises the one verification path.

pub mod wechat;
