//! Storage adapters: the chat-core store ports on SQL through sqlx's `Any` driver, so one code
//! path serves SQLite (the embedded default, a file in the data dir) and MySQL 8 / MariaDB
//! (production). The few dialect differences are in `Dialect`.
//!
//! Layout:
//! - `db`: connecting, pragmas, migrations (`migrations/sqlite`, `migrations/mysql`).
//! - `store`: `SqlStore`, the implementation of `UserStore`, `ConversationStore`, `MessageStore`.
//! - `accounts`: `SqlStore` as `AccountStore` and `RelationStore` (the users area).
//! - `blobs`: `ObjectBlobs` (a `BlobStore` on a directory or S3-compatible storage, through
//!   `object_store`) and `SqlStore` as `UploadStore`.
//! - `access`: `AccessStore` (bans and staff roles, audited).
//! - `orders`: `OrderStore` and `AlertStore`. `moderation`: `ModerationStore` (items and their
//!   resolution, tombstones). `outbox`:
//!   `OutboxStore`, `SqlStore::write_event` (an event row in its change's transaction) and the
//!   payload codec.
//! - `audit`: `AuditLog` and `SqlStore::write_audit` (an entry in its change's transaction).
//! - `catalog`: `CatalogStore` (merchants' products).
//! - `claims`: `ClaimStore` (claims of farm animals, their slots and orders, merchants' updates).
//! - `reviews`: `ReviewStore` (one review per completed order, the merchant's rating with it).
//! - `shop_orders`: `ShopOrderStore` (orders placed and moved, the stock they take, job leases).
//! - `dashboard`: `DashboardStore` (the staff dashboard's counts, users' active day).
//! - `merchants`: `MerchantStore` and `LeadStore` (the merchants area).
//! - `qr`: `QrTicketStore` (QR login tickets by their hash).
//! - `staff`: `StaffStore` (console accounts, lock counting, one-use codes).
//! - `testing`: a throwaway MySQL database per test.

mod access;
mod accounts;
mod audit;
mod dashboard;
mod blobs;
mod catalog;
mod claims;
mod db;
mod merchants;
mod moderation;
mod orders;
mod outbox;
mod qr;
mod reviews;
mod sessions;
mod shop_orders;
mod staff;
mod store;
pub mod testing;

pub use blobs::{ObjectBlobs, S3Config};
pub use db::{Dialect, SqlStore, SqliteSync, StoreOptions};
pub use outbox::{decode_event, encode_event};

/// The storage crate's one error type.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url (expected sqlite: or mysql:)")]
    UnsupportedUrl,
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl From<StorageError> for jiebanke_chat_core::CoreError {
    fn from(e: StorageError) -> Self {
        tracing::warn!(error = %e, "storage error");
        jiebanke_chat_core::CoreError::Unavailable("storage unavailable".into())
    }
}
