//! The uploads' ports: where the bytes live (`BlobStore`: the data dir or S3-compatible object
//! storage) and the record of each upload (`UploadStore`: a table).

use super::{ImageKind, Upload};
use crate::error::Result;
use crate::ids::UserId;
use async_trait::async_trait;

/// Bytes by key. `put` is durable when it returns; `get` of a key never put (or deleted) is
/// `None`; `delete` of a key that is not there succeeds.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// Whether the store answers (for `/readyz`).
    async fn ping(&self) -> bool;
}

/// The uploads table.
#[async_trait]
pub trait UploadStore: Send + Sync + 'static {
    async fn record(&self, owner: UserId, name: &str, kind: ImageKind, size: u64, now: i64) -> Result<Upload>;
    async fn by_name(&self, name: &str) -> Result<Option<Upload>>;
    /// The uploads of `owner`, oldest first.
    async fn owned_by(&self, owner: UserId) -> Result<Vec<Upload>>;
    /// Removes an upload's row; false if there was none.
    async fn forget(&self, id: i64) -> Result<bool>;
}
