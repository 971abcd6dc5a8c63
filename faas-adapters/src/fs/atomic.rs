//! Reading and writing single files: atomic writes (stage a synced temp
//! file, then rename over the target at the commit point), tolerant
//! reads of env and meta files, reads bounded in bytes, directory syncs.

use std::fs::{self, File, Metadata};
use std::io::{ErrorKind, Read, Write};
use std::path::Path;

use faas_ports::{EnvMap, PortError, Version};

use super::layout::{parse_env_file, parse_meta, BadEnvFile, MAX_ENV_FILE_BYTES, MAX_META_FILE_BYTES};
use super::locks::Call;
use super::Inner;

/// Permissions of a written file (unix only), as the Go implementation used.
#[derive(Debug, Clone, Copy)]
pub(super) enum Visibility {
    /// Sources and meta: 0644.
    Public,
    /// Env files, which may hold secrets: 0600.
    Private,
}

impl Inner {
    /// Metadata of a regular file; `None` when it is missing or not a file.
    pub(super) fn file_metadata(&self, path: &Path) -> Result<Option<Metadata>, PortError> {
        match fs::metadata(path) {
            Ok(meta) if meta.is_file() => Ok(Some(meta)),
            Ok(_) => Ok(None),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
            Err(e) => Err(self.map_error("reading", path, e)),
        }
    }

    /// The version in a meta file; `None` when the file is missing. A
    /// version below 1 (never written by us) reads as 1, as in Go.
    pub(super) fn read_meta(&self, path: &Path) -> Result<Option<Version>, PortError> {
        let Some(bytes) = self.read_optional(path, MAX_META_FILE_BYTES)? else {
            return Ok(None);
        };
        parse_meta(&bytes).map(Some).map_err(|e| self.corrupt(path, e))
    }

    /// An env file; missing is empty. Entries that break today's rules are
    /// dropped with a warning naming their keys (older data checked less).
    pub(super) fn read_env(&self, path: &Path) -> Result<EnvMap, PortError> {
        let Some(bytes) = self.read_optional(path, MAX_ENV_FILE_BYTES)? else {
            return Ok(EnvMap::new());
        };
        let (env, dropped) = parse_env_file(&bytes).map_err(|bad| match bad {
            BadEnvFile::Json(e) => self.corrupt(path, e),
            BadEnvFile::NotAnObject(other) => PortError::Internal {
                message: format!("{} holds {other} instead of an object of strings", self.rel(path)),
                source: None,
            },
        })?;
        if !dropped.is_empty() {
            tracing::warn!(
                file = %self.rel(path),
                dropped_keys = ?dropped,
                "Ignoring env entries that break the env rules."
            );
        }
        Ok(env)
    }

    /// A file of at most `cap` bytes; `None` when it is missing. A larger
    /// file (placed by hand: writes stay far below the caps) is `Internal`
    /// naming the file and the cap, and is never read past the cap.
    pub(super) fn read_optional(&self, path: &Path, cap: u64) -> Result<Option<Vec<u8>>, PortError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => return Ok(None),
            Err(e) => return Err(self.map_error("reading", path, e)),
        };
        let mut bytes = Vec::new();
        // One byte more than the cap tells "at the cap" from "over it".
        file.take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| self.map_error("reading", path, e))?;
        if bytes.len() as u64 > cap {
            return Err(PortError::Internal {
                message: format!("{} is larger than the limit of {cap} bytes", self.rel(path)),
                source: None,
            });
        }
        Ok(Some(bytes))
    }

    pub(super) fn write_env(&self, call: &Call, path: &Path, env: &EnvMap) -> Result<(), PortError> {
        let staged = self.stage(path, &env_json(env)?, Visibility::Private)?;
        call.commit_point()?;
        self.commit(staged, path)?;
        if let Some(dir) = path.parent() {
            self.sync_dir(dir)?;
        }
        Ok(())
    }

    /// Writes `bytes` to a synced temp file next to `target`.
    pub(super) fn stage(
        &self,
        target: &Path,
        bytes: &[u8],
        visibility: Visibility,
    ) -> Result<tempfile::NamedTempFile, PortError> {
        let dir = target.parent().unwrap_or(&self.data_dir);
        let prefix = format!(
            ".{}.",
            target.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        );
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = match visibility {
                Visibility::Public => 0o644,
                Visibility::Private => 0o600,
            };
            builder.permissions(fs::Permissions::from_mode(mode));
        }
        #[cfg(not(unix))]
        let _ = visibility;
        let mut file = builder
            .tempfile_in(dir)
            .map_err(|e| self.map_error("creating a temp file for", target, e))?;
        file.write_all(bytes)
            .and_then(|()| file.as_file().sync_all())
            .map_err(|e| self.map_error("writing", target, e))?;
        Ok(file)
    }

    /// Renames a staged file over `target`.
    pub(super) fn commit(&self, staged: tempfile::NamedTempFile, target: &Path) -> Result<(), PortError> {
        staged
            .persist(target)
            .map(drop)
            .map_err(|e| self.map_error("replacing", target, e.error))
    }

    pub(super) fn remove_if_exists(&self, path: &Path) -> Result<(), PortError> {
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(()),
            Err(e) => Err(self.map_error("removing", path, e)),
        }
    }

    /// Makes renames in `dir` durable (unix; elsewhere a no-op).
    pub(super) fn sync_dir(&self, dir: &Path) -> Result<(), PortError> {
        #[cfg(unix)]
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.map_error("syncing", dir, e))?;
        #[cfg(not(unix))]
        let _ = dir;
        Ok(())
    }
}

pub(super) fn env_json(env: &EnvMap) -> Result<Vec<u8>, PortError> {
    serde_json::to_vec(env.as_map()).map_err(|e| PortError::internal("serialising env", e))
}
