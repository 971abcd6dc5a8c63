//! Function use cases: create (upsert), update, pull, get (with version
//! pinning), list, versions, delete.

use faas_ports::{
    CollectionPath, Deployment, EnvMap, FunctionName, FunctionSummary, Language, NewVersion, PortError, SourceUrl,
    Version, VersionItem,
};

use crate::{DomainError, Engine};

/// Where a new version's source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// Inline module source.
    Code(String),
    /// Fetched from a URL at write time.
    Url(SourceUrl),
}

impl SourceSpec {
    /// Exactly one of the two, else `SOURCE_REQUIRED` / `SOURCE_CONFLICT`.
    pub fn exactly_one(code: Option<String>, url: Option<SourceUrl>) -> Result<Self, DomainError> {
        match Self::at_most_one(code, url)? {
            Some(spec) => Ok(spec),
            None => Err(DomainError::SourceRequired),
        }
    }

    /// At most one of the two (`SOURCE_CONFLICT` for both). A blank
    /// `source_code` next to a URL counts as absent, as the Go version
    /// treated it (a blank source alone is refused when it is resolved).
    pub fn at_most_one(code: Option<String>, url: Option<SourceUrl>) -> Result<Option<Self>, DomainError> {
        match (code, url) {
            (Some(code), Some(url)) if code.trim().is_empty() => Ok(Some(SourceSpec::Url(url))),
            (Some(_), Some(_)) => Err(DomainError::SourceConflict),
            (Some(code), None) => Ok(Some(SourceSpec::Code(code))),
            (None, Some(url)) => Ok(Some(SourceSpec::Url(url))),
            (None, None) => Ok(None),
        }
    }
}

/// `POST /functions`: writes version 1, or the next version of an existing function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateFunction {
    /// The function's collection (must exist).
    pub collection_path: CollectionPath,
    /// Its name.
    pub name: FunctionName,
    /// Its language.
    pub language: Language,
    /// Its source.
    pub source: SourceSpec,
    /// Its own env.
    pub env: EnvMap,
}

impl CreateFunction {
    /// A JavaScript function `name` in the root collection with no env of
    /// its own; refine with the `in_collection` / `with_*` methods.
    ///
    /// ```
    /// # use faas_domain::{CreateFunction, SourceSpec};
    /// # use faas_ports::{CollectionPath, EnvMap, FunctionName};
    /// let create = CreateFunction::new(
    ///     FunctionName::parse("hello")?,
    ///     SourceSpec::Code("export async function handler() { return { ok: true }; }".into()),
    /// )
    /// .in_collection(CollectionPath::parse("team")?);
    /// assert_eq!(create.collection_path.as_str(), "team");
    /// # Ok::<(), faas_ports::PortError>(())
    /// ```
    pub fn new(name: FunctionName, source: SourceSpec) -> Self {
        Self {
            collection_path: CollectionPath::root(),
            name,
            language: Language::default(),
            source,
            env: EnvMap::new(),
        }
    }

    /// The function goes into `collection_path` (which must exist).
    #[must_use]
    pub fn in_collection(mut self, collection_path: CollectionPath) -> Self {
        self.collection_path = collection_path;
        self
    }

    /// The function's own env.
    #[must_use]
    pub fn with_env(mut self, env: EnvMap) -> Self {
        self.env = env;
        self
    }

    /// The function's language (`javascript` is the only one today).
    #[must_use]
    pub fn with_language(mut self, language: Language) -> Self {
        self.language = language;
        self
    }
}

/// `PUT /functions/{name}`: `None` fields keep the current value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFunction {
    /// The function's collection.
    pub collection_path: CollectionPath,
    /// Its name.
    pub name: FunctionName,
    /// New source, or keep the current one.
    pub source: Option<SourceSpec>,
    /// New env (`Some(empty)` clears it), or keep the current one.
    pub env: Option<EnvMap>,
}

impl Engine {
    /// Creates a function, or writes a new version of an existing one (upsert).
    #[tracing::instrument(skip_all, fields(collection = %req.collection_path, function = %req.name))]
    pub async fn create_function(&self, req: CreateFunction) -> Result<Deployment, DomainError> {
        self.ensure_collection(&req.collection_path).await?;
        let source_code = self.resolve_source(&req.source).await?;
        self.save(NewVersion {
            collection_path: req.collection_path,
            name: req.name,
            language: req.language,
            source_code,
            env: req.env,
        })
        .await
    }

    /// Writes a new version of an existing function.
    #[tracing::instrument(skip_all, fields(collection = %req.collection_path, function = %req.name))]
    pub async fn update_function(&self, req: UpdateFunction) -> Result<Deployment, DomainError> {
        let current = self.get_function(&req.collection_path, &req.name, None).await?;
        let source_code = match &req.source {
            Some(spec) => self.resolve_source(spec).await?,
            None => current.source_code,
        };
        self.save(NewVersion {
            collection_path: req.collection_path,
            name: req.name,
            language: current.language,
            source_code,
            env: req.env.unwrap_or(current.env),
        })
        .await
    }

    /// Fetches a new source for an existing function and writes it as a new version.
    #[tracing::instrument(skip_all, fields(collection = %collection, function = %name))]
    pub async fn pull_function(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
        url: &SourceUrl,
    ) -> Result<Deployment, DomainError> {
        let current = self.get_function(collection, name, None).await?;
        let source_code = self.fetch(url).await?;
        self.save(NewVersion {
            collection_path: current.collection_path,
            name: current.name,
            language: current.language,
            source_code,
            env: current.env,
        })
        .await
    }

    /// The current version, or a pinned one.
    pub async fn get_function(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
        version: Option<Version>,
    ) -> Result<Deployment, DomainError> {
        self.ensure_collection(collection).await?;
        Ok(self.store.get_function(collection, name, version).await?)
    }

    /// The functions of one collection, sorted by name.
    pub async fn list_functions(&self, collection: &CollectionPath) -> Result<Vec<FunctionSummary>, DomainError> {
        self.ensure_collection(collection).await?;
        let mut list = self.store.list_functions(collection).await?;
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    /// The stored versions of a function, newest first.
    pub async fn list_versions(
        &self,
        collection: &CollectionPath,
        name: &FunctionName,
    ) -> Result<Vec<VersionItem>, DomainError> {
        self.ensure_collection(collection).await?;
        let mut versions = self.store.list_versions(collection, name).await?;
        versions.sort_by_key(|v| std::cmp::Reverse(v.version));
        Ok(versions)
    }

    /// Deletes every version of a function.
    #[tracing::instrument(skip_all, fields(collection = %collection, function = %name))]
    pub async fn delete_function(&self, collection: &CollectionPath, name: &FunctionName) -> Result<(), DomainError> {
        self.ensure_collection(collection).await?;
        Ok(self.store.delete_function(collection, name).await?)
    }

    async fn resolve_source(&self, spec: &SourceSpec) -> Result<String, DomainError> {
        match spec {
            SourceSpec::Code(code) => {
                self.check_source(code)?;
                Ok(code.clone())
            }
            SourceSpec::Url(url) => self.fetch(url).await,
        }
    }

    async fn fetch(&self, url: &SourceUrl) -> Result<String, DomainError> {
        let Some(fetcher) = &self.fetcher else {
            return Err(PortError::SourceFetchFailed("this engine has no source fetcher".into()).into());
        };
        let code = fetcher.fetch(url, self.limits.max_source_bytes).await?;
        self.check_source(&code)?;
        Ok(code)
    }

    /// A source a run can import: not blank (`EMPTY_SOURCE`, as the Go
    /// version refused it), within the size limit.
    fn check_source(&self, code: &str) -> Result<(), DomainError> {
        if code.trim().is_empty() {
            return Err(DomainError::EmptySource);
        }
        if code.len() as u64 > self.limits.max_source_bytes {
            return Err(PortError::SourceTooLarge {
                limit: self.limits.max_source_bytes,
            }
            .into());
        }
        Ok(())
    }

    async fn save(&self, new: NewVersion) -> Result<Deployment, DomainError> {
        let deployment = self.store.save_function(&new).await?;
        tracing::info!(deployment = %deployment.deployment_id(), "function version saved");
        Ok(deployment)
    }
}
