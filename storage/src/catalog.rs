//! `SqlStore` as `CatalogStore`: merchants' products. Public lists join the merchants table so
//! that a suspended merchant's products disappear with it.

use crate::store::corrupt;
use crate::{SqlStore, StorageError};
use async_trait::async_trait;
use jiebanke_chat_core::commerce::catalog::{Animal, CatalogStore, Product, ProductFilter};
use jiebanke_chat_core::commerce::rules::{AnimalSpec, ProductSpec};
use jiebanke_chat_core::error::Result;
use jiebanke_chat_core::UserId;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

const COLS: &str = "p.id, p.merchant_id, p.title, p.description, p.price_fen, p.stock, p.photos, p.created_at, p.updated_at, p.hidden_at";

fn product_from(row: &AnyRow) -> Result<Product, StorageError> {
    let photos: String = row.try_get("photos")?;
    Ok(Product {
        id: row.try_get("id")?,
        merchant: UserId::new(row.try_get("merchant_id")?).map_err(|_| corrupt("product merchant"))?,
        spec: ProductSpec {
            title: row.try_get("title")?,
            description: row.try_get("description")?,
            price_fen: row.try_get("price_fen")?,
            stock: row.try_get::<i64, _>("stock")?.max(0) as u32,
            photos: serde_json::from_str(&photos).map_err(|_| corrupt("product photos"))?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        hidden: row.try_get::<Option<i64>, _>("hidden_at")?.is_some(),
    })
}

const ANIMAL_COLS: &str = "a.id, a.merchant_id, a.species, a.name, a.story, a.photos, a.price_fen, a.period_days, a.slots, a.slots_free, a.created_at, a.hidden_at";

fn animal_from(row: &AnyRow) -> Result<Animal, StorageError> {
    let photos: String = row.try_get("photos")?;
    Ok(Animal {
        id: row.try_get("id")?,
        merchant: UserId::new(row.try_get("merchant_id")?).map_err(|_| corrupt("animal merchant"))?,
        spec: AnimalSpec {
            species: row.try_get("species")?,
            name: row.try_get("name")?,
            story: row.try_get("story")?,
            photos: serde_json::from_str(&photos).map_err(|_| corrupt("animal photos"))?,
            price_fen: row.try_get("price_fen")?,
            period_days: row.try_get::<i64, _>("period_days")?.clamp(0, i64::from(u16::MAX)) as u16,
            slots: row.try_get::<i64, _>("slots")?.max(0) as u32,
        },
        slots_free: row.try_get::<i64, _>("slots_free")?.max(0) as u32,
        created_at: row.try_get("created_at")?,
        hidden: row.try_get::<Option<i64>, _>("hidden_at")?.is_some(),
    })
}

fn photos_json(spec: &ProductSpec) -> String {
    serde_json::to_string(&spec.photos).unwrap_or_else(|_| "[]".into())
}

#[async_trait]
impl CatalogStore for SqlStore {
    async fn create_animal(&self, merchant: UserId, spec: &AnimalSpec, now: i64) -> Result<Animal> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let res = sqlx::query(
                "INSERT INTO animals (merchant_id, species, name, story, photos, price_fen, period_days, slots, slots_free, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(merchant.get())
            .bind(spec.species.clone())
            .bind(spec.name.clone())
            .bind(spec.story.clone())
            .bind(serde_json::to_string(&spec.photos).unwrap_or_else(|_| "[]".into()))
            .bind(spec.price_fen)
            .bind(i64::from(spec.period_days))
            .bind(i64::from(spec.slots))
            .bind(i64::from(spec.slots))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let id = self.insert_id(&mut tx, res).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(Animal { id, merchant, spec: spec.clone(), slots_free: spec.slots, created_at: now, hidden: false })
        };
        Ok(run.await?)
    }

    async fn animal(&self, id: i64) -> Result<Option<Animal>> {
        let sql = format!("SELECT {ANIMAL_COLS} FROM animals a WHERE a.id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await.map_err(StorageError::from)?;
        Ok(row.as_ref().map(animal_from).transpose()?)
    }

    async fn animals(&self, merchant: Option<UserId>, after: Option<i64>, limit: u32) -> Result<Vec<Animal>> {
        let filter = if merchant.is_some() { " AND a.merchant_id = ?" } else { "" };
        let sql = format!("SELECT {ANIMAL_COLS} FROM animals a JOIN merchants m ON m.id = a.merchant_id WHERE a.hidden_at IS NULL AND m.status = 'active' AND a.id > ?{filter} ORDER BY a.id LIMIT ?");
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(after.unwrap_or(0));
        if let Some(m) = merchant {
            q = q.bind(m.get());
        }
        let rows = q.bind(i64::from(limit)).fetch_all(&self.pool).await.map_err(StorageError::from)?;
        Ok(rows.iter().map(animal_from).collect::<Result<_, _>>()?)
    }

    async fn create_product(&self, merchant: UserId, spec: &ProductSpec, now: i64) -> Result<Product> {
        let run = async {
            let mut tx = self.begin_write().await?;
            let res = sqlx::query(
                "INSERT INTO products (merchant_id, kind, title, description, price_fen, stock, photos, created_at, updated_at) \
                 VALUES (?, 'flower', ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(merchant.get())
            .bind(spec.title.clone())
            .bind(spec.description.clone())
            .bind(spec.price_fen)
            .bind(i64::from(spec.stock))
            .bind(photos_json(spec))
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let id = self.insert_id(&mut tx, res).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(Product { id, merchant, spec: spec.clone(), created_at: now, updated_at: now, hidden: false })
        };
        Ok(run.await?)
    }

    async fn product(&self, id: i64) -> Result<Option<Product>> {
        let sql = format!("SELECT {COLS} FROM products p WHERE p.id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await.map_err(StorageError::from)?;
        Ok(row.as_ref().map(product_from).transpose()?)
    }

    async fn update_product(&self, merchant: UserId, id: i64, spec: &ProductSpec, now: i64) -> Result<Option<Product>> {
        let done = sqlx::query(
            "UPDATE products SET title = ?, description = ?, price_fen = ?, stock = ?, photos = ?, updated_at = ? \
             WHERE id = ? AND merchant_id = ? AND hidden_at IS NULL",
        )
        .bind(spec.title.clone())
        .bind(spec.description.clone())
        .bind(spec.price_fen)
        .bind(i64::from(spec.stock))
        .bind(photos_json(spec))
        .bind(now)
        .bind(id)
        .bind(merchant.get())
        .execute(&self.pool)
        .await
        .map_err(StorageError::from)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.product(id).await
    }

    async fn hide_product(&self, merchant: UserId, id: i64, now: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE products SET hidden_at = ? WHERE id = ? AND merchant_id = ? AND hidden_at IS NULL")
            .bind(now)
            .bind(id)
            .bind(merchant.get())
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(done.rows_affected() == 1)
    }

    async fn products(&self, filter: &ProductFilter, after: Option<i64>, limit: u32) -> Result<Vec<Product>> {
        let mut sql = format!("SELECT {COLS} FROM products p JOIN merchants m ON m.id = p.merchant_id WHERE p.hidden_at IS NULL AND m.status = 'active' AND p.id > ?");
        if filter.merchant.is_some() {
            sql.push_str(" AND p.merchant_id = ?");
        }
        if filter.q.is_some() {
            sql.push_str(" AND p.title LIKE ? ESCAPE '!'");
        }
        sql.push_str(" ORDER BY p.id LIMIT ?");
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(after.unwrap_or(0));
        if let Some(m) = filter.merchant {
            q = q.bind(m.get());
        }
        if let Some(text) = &filter.q {
            q = q.bind(crate::store::like_contains(text.trim()));
        }
        let rows = q.bind(i64::from(limit)).fetch_all(&self.pool).await.map_err(StorageError::from)?;
        Ok(rows.iter().map(product_from).collect::<Result<_, _>>()?)
    }

    async fn merchant_products(&self, merchant: UserId, after: Option<i64>, limit: u32) -> Result<Vec<Product>> {
        let sql = format!("SELECT {COLS} FROM products p WHERE p.merchant_id = ? AND p.id > ? ORDER BY p.id LIMIT ?");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(merchant.get())
            .bind(after.unwrap_or(0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(rows.iter().map(product_from).collect::<Result<_, _>>()?)
    }
}
