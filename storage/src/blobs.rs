//! `BlobStore` on the `object_store` crate: a directory (the embedded default, `<data dir>/`)
//! or S3-compatible object storage (AWS S3, Tencent COS, MinIO, ...) when `JBK_S3_BUCKET` is
//! set. And `UploadStore`: the uploads table on `SqlStore`.

use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::uploads::{BlobStore, ImageKind, Upload, UploadStore};
use jiebanke_chat_core::{CoreError, UserId};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sqlx::Row;
use std::sync::Arc;

/// Where S3-compatible object storage is and how to sign for it. `Debug` hides the keys.
#[derive(Clone)]
pub struct S3Config {
    /// e.g. `https://cos.ap-shanghai.myqcloud.com`; `http://` is allowed (a local test server).
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config").field("endpoint", &self.endpoint).field("bucket", &self.bucket).field("region", &self.region).finish_non_exhaustive()
    }
}

pub struct ObjectBlobs {
    store: Arc<dyn ObjectStore>,
}

fn unavailable(e: object_store::Error) -> CoreError {
    tracing::warn!(error = %e, "object storage error");
    CoreError::Unavailable("object storage unavailable".into())
}

impl ObjectBlobs {
    /// Blobs as files under `dir`.
    pub fn local(dir: &std::path::Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::Corrupt(format!("creating {}: {e}", dir.display())))?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| StorageError::Corrupt(format!("blob dir {}: {e}", dir.display())))?;
        Ok(ObjectBlobs { store: Arc::new(fs) })
    }

    /// Blobs in an S3-compatible bucket (path-style requests, as COS and MinIO take them).
    pub fn s3(c: &S3Config) -> Result<Self, StorageError> {
        let s3 = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(c.endpoint.clone())
            .with_bucket_name(c.bucket.clone())
            .with_region(c.region.clone())
            .with_access_key_id(c.access_key_id.clone())
            .with_secret_access_key(c.secret_access_key.clone())
            .with_allow_http(c.endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false)
            .build()
            .map_err(|e| StorageError::Corrupt(format!("S3 configuration: {e}")))?;
        Ok(ObjectBlobs { store: Arc::new(s3) })
    }
}

#[async_trait]
impl BlobStore for ObjectBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> Result<()> {
        self.store.put(&Path::from(key), PutPayload::from(bytes)).await.map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.store.get(&Path::from(key)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(unavailable)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn ping(&self) -> bool {
        // A key that is never written: "not found" means the store answered.
        match self.store.head(&Path::from("uploads/.ping")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => true,
            Err(e) => {
                tracing::warn!(error = %e, "object storage does not answer");
                false
            }
        }
    }
}

fn kind_of(s: &str) -> Result<ImageKind, StorageError> {
    ImageKind::from_ext(s).ok_or_else(|| StorageError::Corrupt("upload kind".into()))
}

#[async_trait]
impl UploadStore for SqlStore {
    async fn record(&self, owner: UserId, name: &str, kind: ImageKind, size: u64, now: i64) -> Result<Upload> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let res = sqlx::query("INSERT INTO uploads (owner_id, name, kind, size, created_at) VALUES (?, ?, ?, ?, ?)")
                .bind(owner.get())
                .bind(name.to_owned())
                .bind(kind.ext())
                .bind(size as i64)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let id = self.insert_id(&mut tx, res).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(id)
        };
        let id = run.await?;
        Ok(Upload { id, owner, name: name.to_owned(), kind, size, created_at: now })
    }

    async fn by_name(&self, name: &str) -> Result<Option<Upload>> {
        let row = sqlx::query("SELECT id, owner_id, name, kind, size, created_at FROM uploads WHERE name = ?")
            .bind(name.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(row.as_ref().map(upload_from).transpose()?)
    }

    async fn owned_by(&self, owner: UserId) -> Result<Vec<Upload>> {
        let rows = sqlx::query("SELECT id, owner_id, name, kind, size, created_at FROM uploads WHERE owner_id = ? ORDER BY id")
            .bind(owner.get())
            .fetch_all(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(rows.iter().map(upload_from).collect::<Result<_, _>>()?)
    }

    async fn forget(&self, id: i64) -> Result<bool> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query("DELETE FROM uploads WHERE id = ?").bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(done.rows_affected() > 0)
        };
        Ok(run.await?)
    }
}

fn upload_from(r: &sqlx::any::AnyRow) -> Result<Upload, StorageError> {
    Ok(Upload {
        id: r.try_get("id")?,
        owner: UserId::new(r.try_get("owner_id")?).map_err(|_| StorageError::Corrupt("owner id".into()))?,
        name: r.try_get("name")?,
        kind: kind_of(&r.try_get::<String, _>("kind")?)?,
        size: r.try_get::<i64, _>("size")? as u64,
        created_at: r.try_get("created_at")?,
    })
}
