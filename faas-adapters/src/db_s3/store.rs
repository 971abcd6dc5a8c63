//! The store's operations on collections and functions: SQL in one
//! transaction per write, source objects written and deleted under the
//! function row's lock.

use chrono::{DateTime, Utc};
use faas_ports::{
    function_id, CollectionInfo, CollectionPath, Deployment, EnvMap, FunctionName, FunctionSummary, NewVersion,
    PortError, Revision, Version, VersionItem,
};
use futures_util::StreamExt;
use object_store::ObjectStoreExt;
use sqlx::{Postgres, Transaction};

use super::objects::{map_s3_error, SourceError};
use super::postgres::{
    env_from_json, env_to_json, is_foreign_key_violation, language_from_db, map_sqlx_error, version_from_db,
    version_to_db, CollectionRow, RevisionRow, SummaryRow, VersionItemRow, VersionRow,
};
use super::Inner;

/// How often a save retries when a concurrent delete removed the function
/// row between its insert and its lock.
pub(super) const SAVE_LOCK_ATTEMPTS: usize = 3;

/// Objects deleted at once by `delete_function`.
pub(super) const DELETE_CONCURRENCY: usize = 8;

pub(super) fn collection_not_found(path: &CollectionPath) -> PortError {
    PortError::CollectionNotFound(path.to_string())
}

impl Inner {
    // ---- collections ----

    pub(super) async fn collection_exists(&self, path: &CollectionPath) -> Result<bool, PortError> {
        if path.is_root() {
            return Ok(true);
        }
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM collection_paths WHERE path = $1)")
            .bind(path.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("reading a collection", e))
    }

    pub(super) async fn create_collection(
        &self,
        path: &CollectionPath,
        env: &EnvMap,
    ) -> Result<CollectionInfo, PortError> {
        const OP: &str = "creating a collection";
        let Some(parent) = path.parent() else {
            return Err(PortError::CollectionExists(path.to_string()));
        };
        let env_json = env_to_json(env)?;
        let mut tx = self.pool.begin().await.map_err(|e| map_sqlx_error(OP, e))?;
        // Missing ancestors (not the root, not the leaf), parents first.
        for ancestor in path.lineage().iter().skip(1).filter(|a| *a != path) {
            let ancestor_parent = ancestor.parent().unwrap_or_default();
            sqlx::query(
                "INSERT INTO collection_paths (path, parent_path, env_json, created_at) \
                 VALUES ($1, $2, '{}', clock_timestamp()) ON CONFLICT (path) DO NOTHING",
            )
            .bind(ancestor.as_str())
            .bind(ancestor_parent.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.map_collection_write_error(OP, &ancestor_parent, e))?;
        }
        let created: Option<DateTime<Utc>> = sqlx::query_scalar(
            "INSERT INTO collection_paths (path, parent_path, env_json, created_at) \
             VALUES ($1, $2, $3::jsonb, clock_timestamp()) \
             ON CONFLICT (path) DO NOTHING RETURNING created_at",
        )
        .bind(path.as_str())
        .bind(parent.as_str())
        .bind(&env_json)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.map_collection_write_error(OP, &parent, e))?;
        let Some(created_at) = created else {
            return Err(PortError::CollectionExists(path.to_string()));
        };
        tx.commit().await.map_err(|e| map_sqlx_error(OP, e))?;
        Ok(CollectionInfo {
            path: path.clone(),
            created_at,
            ignored_env_keys: Vec::new(),
        })
    }

    /// An ancestor deleted by a concurrent writer between our insert and
    /// the child's: the parent is gone.
    pub(super) fn map_collection_write_error(&self, op: &str, parent: &CollectionPath, err: sqlx::Error) -> PortError {
        if is_foreign_key_violation(&err) {
            collection_not_found(parent)
        } else {
            map_sqlx_error(op, err)
        }
    }

    pub(super) async fn list_collections(&self) -> Result<Vec<CollectionInfo>, PortError> {
        let rows: Vec<CollectionRow> = sqlx::query_as(
            "SELECT path, created_at, env_json::text AS env_json FROM collection_paths WHERE path <> '' ORDER BY path",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("listing collections", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for CollectionRow {
            path: raw,
            created_at,
            env_json,
        } in rows
        {
            match CollectionPath::parse_stored(&raw) {
                Ok(path) if path.as_str() == raw => {
                    // Listed even when its env cannot be read (loading it says why).
                    let ignored_env_keys = match env_from_json(&env_json, &format!("collection '{path}'")) {
                        Ok(env) => env.ignored_keys().to_vec(),
                        Err(e) => {
                            tracing::warn!(collection = %path, error = %faas_ports::report::Report(&e), "Cannot read a collection env while listing.");
                            Vec::new()
                        }
                    };
                    out.push(CollectionInfo {
                        path,
                        created_at,
                        ignored_env_keys,
                    });
                }
                _ => tracing::warn!(path = %raw, "Skipping a collection row that is not a valid collection path."),
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    pub(super) async fn collection_env(&self, path: &CollectionPath) -> Result<EnvMap, PortError> {
        let raw: Option<String> = sqlx::query_scalar("SELECT env_json::text FROM collection_paths WHERE path = $1")
            .bind(path.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map_sqlx_error("reading a collection env", e))?;
        match raw {
            Some(raw) => env_from_json(&raw, &format!("collection '{path}'")),
            // The migration inserts the root; an empty env if someone removed it.
            None if path.is_root() => Ok(EnvMap::new()),
            None => Err(collection_not_found(path)),
        }
    }

    pub(super) async fn set_collection_env(&self, path: &CollectionPath, env: &EnvMap) -> Result<(), PortError> {
        const OP: &str = "writing a collection env";
        let env_json = env_to_json(env)?;
        let query = if path.is_root() {
            sqlx::query(
                "INSERT INTO collection_paths (path, parent_path, env_json, created_at) \
                 VALUES ($1, NULL, $2::jsonb, clock_timestamp()) \
                 ON CONFLICT (path) DO UPDATE SET env_json = EXCLUDED.env_json",
            )
        } else {
            sqlx::query("UPDATE collection_paths SET env_json = $2::jsonb WHERE path = $1")
        };
        let done = query
            .bind(path.as_str())
            .bind(&env_json)
            .execute(&self.pool)
            .await
            .map_err(|e| map_sqlx_error(OP, e))?;
        if done.rows_affected() == 0 {
            return Err(collection_not_found(path));
        }
        Ok(())
    }

    pub(super) async fn delete_collection(&self, path: &CollectionPath) -> Result<(), PortError> {
        if path.is_root() {
            return Err(PortError::InvalidCollectionPath(
                "the root collection cannot be deleted".into(),
            ));
        }
        // The foreign keys of sub-collections and functions refuse the delete
        // of a non-empty collection, concurrent writers included.
        let done = sqlx::query("DELETE FROM collection_paths WHERE path = $1")
            .bind(path.as_str())
            .execute(&self.pool)
            .await;
        match done {
            Ok(done) if done.rows_affected() == 0 => Err(collection_not_found(path)),
            Ok(_) => Ok(()),
            Err(e) if is_foreign_key_violation(&e) => Err(PortError::CollectionNotEmpty(path.to_string())),
            Err(e) => Err(map_sqlx_error("deleting a collection", e)),
        }
    }

    // ---- functions ----

    /// The error for a function that was not found: the collection first.
    pub(super) async fn not_found(&self, collection: &CollectionPath, name: &FunctionName) -> PortError {
        match self.collection_exists(collection).await {
            Ok(true) => PortError::FunctionNotFound(function_id(collection, name)),
            Ok(false) => collection_not_found(collection),
            Err(e) => e,
        }
    }

    pub(super) async fn has_versions(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<bool, PortError> {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM function_versions WHERE collection_path = $1 AND function_name = $2)",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("reading a function", e))
    }

    pub(super) async fn save_function(&self, new: &NewVersion) -> Result<Deployment, PortError> {
        const OP: &str = "saving a function";
        let mut tx = self.pool.begin().await.map_err(|e| map_sqlx_error(OP, e))?;
        match self.save_in(&mut tx, new).await {
            Ok(deployment) => {
                tx.commit().await.map_err(|e| map_sqlx_error(OP, e))?;
                Ok(deployment)
            }
            Err(e) => {
                // Explicit, so the function row's lock goes now (dropping
                // the transaction would also roll back, on its next use).
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "Could not roll back a failed save.");
                }
                Err(e)
            }
        }
    }

    pub(super) async fn save_in(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        new: &NewVersion,
    ) -> Result<Deployment, PortError> {
        const OP: &str = "saving a function";
        let collection = &new.collection_path;
        let name = &new.name;
        self.lock_function_for_save(tx, new).await?;

        let current: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM function_versions WHERE collection_path = $1 AND function_name = $2",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| map_sqlx_error(OP, e))?;
        let version = match current {
            Some(raw) => version_from_db(raw)?.next(),
            None => Version::FIRST,
        };
        let key = self.s3_key(collection, name, version);
        self.put_source(&key, &new.source_code).await?;

        let env_json = env_to_json(&new.env)?;
        let created_at: DateTime<Utc> = sqlx::query_scalar(
            "INSERT INTO function_versions (collection_path, function_name, version, s3_key, env_json, created_at) \
             VALUES ($1, $2, $3, $4, $5::jsonb, clock_timestamp()) RETURNING created_at",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .bind(version_to_db(version)?)
        .bind(&key)
        .bind(&env_json)
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| map_sqlx_error(OP, e))?;
        sqlx::query(
            "UPDATE functions SET language = $3, env_json = $4::jsonb, updated_at = $5 \
             WHERE collection_path = $1 AND name = $2",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .bind(new.language.as_str())
        .bind(&env_json)
        .bind(created_at)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx_error(OP, e))?;

        Ok(new.to_deployment(version, created_at))
    }

    /// Creates the function row if needed and locks it for this transaction.
    pub(super) async fn lock_function_for_save(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        new: &NewVersion,
    ) -> Result<(), PortError> {
        const OP: &str = "saving a function";
        let collection = &new.collection_path;
        for _ in 0..SAVE_LOCK_ATTEMPTS {
            let inserted = sqlx::query(
                "INSERT INTO functions (collection_path, name, language, env_json, updated_at) \
                 VALUES ($1, $2, $3, '{}', clock_timestamp()) \
                 ON CONFLICT (collection_path, name) DO NOTHING",
            )
            .bind(collection.as_str())
            .bind(new.name.as_str())
            .bind(new.language.as_str())
            .execute(&mut **tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(e) if is_foreign_key_violation(&e) => return Err(collection_not_found(collection)),
                Err(e) => return Err(map_sqlx_error(OP, e)),
            }
            let locked: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM functions WHERE collection_path = $1 AND name = $2 FOR UPDATE")
                    .bind(collection.as_str())
                    .bind(new.name.as_str())
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(|e| map_sqlx_error(OP, e))?;
            if locked.is_some() {
                return Ok(());
            }
            // A concurrent delete removed the row between our insert and our lock.
        }
        Err(PortError::Unavailable {
            component: faas_ports::Component::Storage,
            message: format!(
                "{OP}: the function '{}' kept being deleted concurrently",
                function_id(collection, &new.name)
            ),
            source: None,
        })
    }

    pub(super) async fn get_function(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
        pinned: Option<Version>,
    ) -> Result<Deployment, PortError> {
        const OP: &str = "loading a function";
        let pinned_db = pinned.map(version_to_db).transpose()?;
        let row: Option<VersionRow> = sqlx::query_as(
            "SELECT v.version, v.s3_key, v.env_json::text AS env_json, f.language, v.created_at \
             FROM function_versions v \
             JOIN functions f ON f.collection_path = v.collection_path AND f.name = v.function_name \
             WHERE v.collection_path = $1 AND v.function_name = $2 AND ($3::bigint IS NULL OR v.version = $3) \
             ORDER BY v.version DESC LIMIT 1",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .bind(pinned_db)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error(OP, e))?;
        let Some(VersionRow {
            version,
            s3_key: key,
            env_json,
            language,
            created_at,
        }) = row
        else {
            return Err(match pinned {
                Some(version) if self.has_versions(collection, name).await? => PortError::VersionNotFound {
                    function: function_id(collection, name),
                    version: version.get(),
                },
                _ => self.not_found(collection, name).await,
            });
        };
        let version = version_from_db(version)?;
        let id = faas_ports::deployment_id(collection, name, version);
        let source_code = match self.get_source(&key).await {
            Ok(source) => source,
            Err(SourceError::Missing(e)) => {
                // Deleted between our read of the row and of the object?
                return Err(if self.has_versions(collection, name).await? {
                    PortError::internal(format!("the source object of {id} is missing"), e)
                } else {
                    self.not_found(collection, name).await
                });
            }
            Err(SourceError::Other(e)) => return Err(e),
        };
        Ok(Deployment {
            collection_path: collection.clone(),
            name: name.clone(),
            language: language_from_db(&language)?,
            source_code,
            env: env_from_json(&env_json, &id)?,
            version,
            created_at,
        })
    }

    /// One indexed query: the newest version row. Its `id` is the token: ids
    /// are never reused, so a delete and re-create changes it even when the
    /// version number comes back.
    pub(super) async fn current_revision(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<Revision, PortError> {
        let current: Option<RevisionRow> = sqlx::query_as(
            "SELECT version, id FROM function_versions WHERE collection_path = $1 AND function_name = $2 \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("reading a function's version", e))?;
        match current {
            Some(RevisionRow { version, id }) => Ok(Revision {
                version: version_from_db(version)?,
                token: id.to_string(),
            }),
            None => Err(self.not_found(collection, name).await),
        }
    }

    pub(super) async fn list_functions(&self, collection: &CollectionPath) -> Result<Vec<FunctionSummary>, PortError> {
        if !self.collection_exists(collection).await? {
            return Err(collection_not_found(collection));
        }
        let rows: Vec<SummaryRow> = sqlx::query_as(
            "SELECT f.name, f.language, v.version, v.created_at FROM functions f \
             JOIN LATERAL ( \
                 SELECT version, created_at FROM function_versions \
                 WHERE collection_path = f.collection_path AND function_name = f.name \
                 ORDER BY version DESC LIMIT 1 \
             ) v ON true \
             WHERE f.collection_path = $1 ORDER BY f.name",
        )
        .bind(collection.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("listing functions", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for SummaryRow {
            name: raw_name,
            language,
            version,
            created_at,
        } in rows
        {
            // Names the Go version could store are listed too (docs/api.md §2.1).
            let Ok(name) = FunctionName::parse_stored(&raw_name) else {
                tracing::warn!(name = %raw_name.escape_debug(), collection = %collection, "Skipping a function row whose name no version could have stored.");
                continue;
            };
            out.push(FunctionSummary {
                collection_path: collection.clone(),
                name,
                language: language_from_db(&language)?,
                version: version_from_db(version)?,
                created_at,
            });
        }
        out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(out)
    }

    pub(super) async fn list_versions(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<Vec<VersionItem>, PortError> {
        let rows: Vec<VersionItemRow> = sqlx::query_as(
            "SELECT version, created_at FROM function_versions \
             WHERE collection_path = $1 AND function_name = $2 ORDER BY version DESC",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx_error("listing versions", e))?;
        if rows.is_empty() {
            return Err(self.not_found(collection, name).await);
        }
        rows.into_iter()
            .map(|VersionItemRow { version, created_at }| {
                Ok(VersionItem {
                    version: version_from_db(version)?,
                    created_at,
                })
            })
            .collect()
    }

    pub(super) async fn delete_function(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<(), PortError> {
        const OP: &str = "deleting a function";
        let mut tx = self.pool.begin().await.map_err(|e| map_sqlx_error(OP, e))?;
        let locked: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM functions WHERE collection_path = $1 AND name = $2 FOR UPDATE")
                .bind(collection.as_str())
                .bind(name.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| map_sqlx_error(OP, e))?;
        if locked.is_none() {
            drop(tx);
            return Err(self.not_found(collection, name).await);
        }
        let keys: Vec<String> = sqlx::query_scalar(
            "DELETE FROM function_versions WHERE collection_path = $1 AND function_name = $2 RETURNING s3_key",
        )
        .bind(collection.as_str())
        .bind(name.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| map_sqlx_error(OP, e))?;
        sqlx::query("DELETE FROM functions WHERE collection_path = $1 AND name = $2")
            .bind(collection.as_str())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| map_sqlx_error(OP, e))?;
        // Under the row lock: a concurrent re-creation waits for our commit.
        let id = function_id(collection, name);
        futures_util::stream::iter(keys)
            .for_each_concurrent(DELETE_CONCURRENCY, |key| {
                let id = &id;
                async move {
                    let result = match Self::object_path(&key) {
                        Ok(path) => self.s3.delete(&path).await.map_err(|e| map_s3_error(OP, e)),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = result {
                        tracing::warn!(function = %id, key = %key, error = %faas_ports::report::Report(&e), "Could not delete a source object; it stays as an orphan.");
                    }
                }
            })
            .await;
        tx.commit().await.map_err(|e| map_sqlx_error(OP, e))
    }

    pub(super) async fn health(&self) -> Result<(), PortError> {
        self.ping_postgres().await?;
        self.ping_s3().await
    }
}
