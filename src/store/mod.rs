//! Embedded state under `state_dir` (one redb file): API keys created through the admin
//! API (their SHA-256, never the value), config keys revoked through it, and per-day
//! usage counts per plan and key. Only the admin thread and the usage flusher touch it;
//! workers never wait on it.
//!
//! A file that cannot be opened or fails redb's integrity check stops startup with an
//! error naming it: state is never silently reset.

// The lock around the database is taken by the admin thread and the usage flusher
// only (a reopen after an I/O error writes it); workers never touch the store.
#![allow(clippy::disallowed_types)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// name → JSON [`StoredKey`] (without the name)
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
/// name → SHA-256 of the revoked config value (a changed value in the config is live again)
const REVOKED: TableDefinition<&str, &[u8]> = TableDefinition::new("revoked_config_keys");
/// (plan, key name, day number) → requests admitted that day
const USAGE: TableDefinition<(&str, &str, u32), u64> = TableDefinition::new("usage");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Names this store keeps for good once first given (`pinned_name`).
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("names");
/// In a cluster, the admin key changes Redis has not taken yet: id → JSON
/// (`cluster::admin::KeyWrite`), so a node that stops first writes them when it starts
/// again. An older Portico ignores the table.
const KEY_WRITES: TableDefinition<&str, &[u8]> = TableDefinition::new("cluster_key_writes");
const FORMAT: u64 = 1;

type UsageRow<'a> = Result<
    (
        redb::AccessGuard<'a, (&'static str, &'static str, u32)>,
        redb::AccessGuard<'a, u64>,
    ),
    redb::StorageError,
>;
pub const FILE_NAME: &str = "portico.redb";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state directory {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    #[error(
        "state file {0} is unreadable or corrupt: {1}. Portico does not reset state on its \
         own: restore a backup, or move the file away to start with no created keys and no usage"
    )]
    Corrupt(PathBuf, String),
    #[error(
        "cannot open the state file {0}: {1} (this user must be able to read and write it, \
         on a writable file system)"
    )]
    Open(PathBuf, std::io::Error),
    #[error("cannot write the state file {0}: {1} (free space on its file system, or raise the file size limit)")]
    Full(PathBuf, std::io::Error),
    #[error("state file {0} is in use by another Portico process")]
    InUse(PathBuf),
    #[error("state file {0} has format {1}; this Portico reads format {FORMAT}")]
    Format(PathBuf, u64),
    #[error("state store: {0}")]
    Io(String),
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

/// An API key created through the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    #[serde(skip)]
    pub name: String,
    #[serde(with = "hex32")]
    pub sha256: [u8; 32],
    pub plan: Option<String>,
    /// Unix seconds.
    pub created: u64,
}

/// One per-day usage count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    pub plan: String,
    pub key: String,
    pub day: u32,
    pub count: u64,
}

pub struct Store {
    /// None only between a failed reopen and the next try.
    db: RwLock<Option<Database>>,
    path: PathBuf,
    /// An I/O error happened: redb refuses every later operation ("Previous I/O error
    /// occurred. Please close and re-open the database."), so the next one reopens it
    /// first. Without that, one full disk left the store refusing until a restart: a
    /// leaked key could not be revoked, and usage was never written again.
    broken: AtomicBool,
}

impl Store {
    /// Opens (or creates) `dir/portico.redb`, checking its integrity.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Dir(dir.to_path_buf(), e))?;
        let path = dir.join(FILE_NAME);
        // redb takes an empty file for a new store: an empty restore or a failed copy
        // would bring revoked keys back and every count to zero, unsaid.
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == 0) {
            return Err(StoreError::Corrupt(
                path,
                "the file is empty (0 bytes)".into(),
            ));
        }
        let new = std::fs::symlink_metadata(&path).is_err();
        let opened = Self::create(&path).and_then(|db| {
            let store = Store {
                db: RwLock::new(Some(db)),
                path: path.clone(),
                broken: AtomicBool::new(false),
            };
            store.init().map(|()| store)
        });
        match opened {
            // A file this open created and could not set up (a full disk) holds nothing:
            // left behind, it would stop every later start as corrupt.
            Err(e) if new && !matches!(e, StoreError::InUse(_)) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
            opened => opened,
        }
    }

    /// A redb error met while opening: a full file system (or file size limit) is not
    /// the file's fault; anything else is.
    fn open_error(path: &Path, e: impl Into<redb::Error>) -> StoreError {
        use std::io::ErrorKind::{FileTooLarge, QuotaExceeded, StorageFull};
        match e.into() {
            redb::Error::Io(e)
                if matches!(e.kind(), StorageFull | FileTooLarge | QuotaExceeded) =>
            {
                StoreError::Full(path.to_path_buf(), e)
            }
            e => StoreError::Corrupt(path.to_path_buf(), e.to_string()),
        }
    }

    fn create(path: &Path) -> Result<Database, StoreError> {
        Database::builder()
            .set_check_integrity_on_open(true)
            .set_cache_size(4 << 20)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.to_path_buf()),
                // Not the file's fault: no advice to move it away.
                redb::DatabaseError::Storage(redb::StorageError::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::PermissionDenied
                            | std::io::ErrorKind::ReadOnlyFilesystem
                            | std::io::ErrorKind::IsADirectory
                    ) =>
                {
                    StoreError::Open(path.to_path_buf(), e)
                }
                e => Self::open_error(path, e),
            })
    }

    /// Runs `f` on the database, reopened first after an I/O error (see `broken`).
    fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.broken.swap(false, Ordering::AcqRel) {
            let mut db = self.db.write().unwrap_or_else(PoisonError::into_inner);
            // The old handle goes first: redb locks the file while one is open.
            drop(db.take());
            match Self::create(&self.path) {
                Ok(again) => *db = Some(again),
                Err(e) => {
                    self.broken.store(true, Ordering::Release);
                    return Err(io(format!("reopening after an I/O error: {e}")));
                }
            }
        }
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        match db.as_ref() {
            Some(db) => f(db),
            None => Err(io("not open after an I/O error")),
        }
    }

    /// A redb error as a `StoreError`, marking the store for a reopen when it is an I/O
    /// error (or the refusal redb answers every operation with after one).
    fn failed(&self, e: impl Into<redb::Error>) -> StoreError {
        let e = e.into();
        if matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo) {
            self.broken.store(true, Ordering::Release);
        }
        io(e)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the tables and checks the format stamp.
    fn init(&self) -> Result<(), StoreError> {
        let corrupt = |e: redb::Error| Self::open_error(&self.path, e);
        let tx = self.with_db(|db| db.begin_write().map_err(|e| corrupt(e.into())))?;
        {
            let mut meta = tx.open_table(META).map_err(|e| corrupt(e.into()))?;
            let found = meta
                .get("format")
                .map_err(|e| corrupt(e.into()))?
                .map(|v| v.value());
            match found {
                Some(FORMAT) => {}
                Some(other) => return Err(StoreError::Format(self.path.clone(), other)),
                None => {
                    meta.insert("format", FORMAT)
                        .map_err(|e| corrupt(e.into()))?;
                }
            }
            tx.open_table(KEYS).map_err(|e| corrupt(e.into()))?;
            tx.open_table(REVOKED).map_err(|e| corrupt(e.into()))?;
            tx.open_table(USAGE).map_err(|e| corrupt(e.into()))?;
            tx.open_table(NAMES).map_err(|e| corrupt(e.into()))?;
            tx.open_table(KEY_WRITES).map_err(|e| corrupt(e.into()))?;
        }
        tx.commit().map_err(|e| corrupt(e.into()))
    }

    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), StoreError> {
        let mut tx = self.with_db(|db| db.begin_write().map_err(|e| self.failed(e)))?;
        // Every commit is fsynced: a crash loses nothing that was committed.
        tx.set_durability(Durability::Immediate)
            .map_err(|e| self.failed(e))?;
        f(&tx).map_err(|e| self.failed(e))?;
        tx.commit().map_err(|e| self.failed(e))
    }

    pub fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let tx = self.with_db(|db| db.begin_read().map_err(|e| self.failed(e)))?;
        let table = tx.open_table(KEYS).map_err(|e| self.failed(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.failed(e))? {
            let (name, value) = row.map_err(|e| self.failed(e))?;
            let mut key: StoredKey = serde_json::from_slice(value.value()).map_err(|e| {
                StoreError::Corrupt(
                    self.path.clone(),
                    format!("api key {:?}: {e}", name.value()),
                )
            })?;
            key.name = name.value().to_string();
            out.push(key);
        }
        Ok(out)
    }

    pub fn put_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let json = serde_json::to_vec(key).map_err(io)?;
        self.write(|tx| {
            tx.open_table(KEYS)?
                .insert(key.name.as_str(), json.as_slice())?;
            Ok(())
        })
    }

    /// The name stored under `what`, or `first` (stored now) if there is none yet.
    pub fn pinned_name(&self, what: &str, first: &str) -> Result<String, StoreError> {
        let mut name = first.to_string();
        self.write(|tx| {
            let mut t = tx.open_table(NAMES)?;
            let found = t.get(what)?.map(|v| v.value().to_string());
            match found {
                Some(n) => name = n,
                None => {
                    t.insert(what, first)?;
                }
            }
            Ok(())
        })?;
        Ok(name)
    }

    /// The value stored under `what` (`pinned_name`'s table), if any.
    pub fn remembered(&self, what: &str) -> Result<Option<String>, StoreError> {
        let tx = self.with_db(|db| db.begin_read().map_err(|e| self.failed(e)))?;
        let t = tx.open_table(NAMES).map_err(|e| self.failed(e))?;
        Ok(t.get(what)
            .map_err(|e| self.failed(e))?
            .map(|v| v.value().to_string()))
    }

    /// Stores `value` under `what`, replacing what was there.
    pub fn remember(&self, what: &str, value: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(NAMES)?.insert(what, value)?;
            Ok(())
        })
    }

    /// Removes a created key; false if there was none of that name.
    pub fn delete_key(&self, name: &str) -> Result<bool, StoreError> {
        let mut found = false;
        self.write(|tx| {
            found = tx.open_table(KEYS)?.remove(name)?.is_some();
            Ok(())
        })?;
        Ok(found)
    }

    /// Config keys revoked through the admin API: name → SHA-256 of the revoked value.
    pub fn revoked(&self) -> Result<Vec<(String, [u8; 32])>, StoreError> {
        let tx = self.with_db(|db| db.begin_read().map_err(|e| self.failed(e)))?;
        let table = tx.open_table(REVOKED).map_err(|e| self.failed(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.failed(e))? {
            let (name, digest) = row.map_err(|e| self.failed(e))?;
            let digest: [u8; 32] = digest.value().try_into().map_err(|_| {
                StoreError::Corrupt(self.path.clone(), format!("revoked key {:?}", name.value()))
            })?;
            out.push((name.value().to_string(), digest));
        }
        Ok(out)
    }

    pub fn put_revoked(&self, name: &str, sha256: &[u8; 32]) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(REVOKED)?.insert(name, sha256.as_slice())?;
            Ok(())
        })
    }

    /// Keeps a cluster key change Redis has not taken (replacing one of that id).
    pub fn put_key_write(&self, id: &str, json: &[u8]) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(KEY_WRITES)?.insert(id, json)?;
            Ok(())
        })
    }

    /// Forgets a cluster key change (Redis took it).
    pub fn delete_key_write(&self, id: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(KEY_WRITES)?.remove(id)?;
            Ok(())
        })
    }

    /// The cluster key changes Redis had not taken: (id, JSON).
    pub fn key_writes(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let tx = self.with_db(|db| db.begin_read().map_err(|e| self.failed(e)))?;
        let t = tx.open_table(KEY_WRITES).map_err(|e| self.failed(e))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.failed(e))? {
            let (id, json) = row.map_err(|e| self.failed(e))?;
            out.push((id.value().to_string(), json.value().to_vec()));
        }
        Ok(out)
    }

    /// Writes absolute per-day counts (idempotent), all in one fsynced commit.
    pub fn write_usage(&self, counts: &[DayCount]) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut t = tx.open_table(USAGE)?;
            for c in counts {
                t.insert((c.plan.as_str(), c.key.as_str(), c.day), c.count)?;
            }
            Ok(())
        })
    }

    /// Per-day counts of `plan` (one key, or every key) for days `from..=to`.
    pub fn usage(
        &self,
        plan: &str,
        key: Option<&str>,
        from: u32,
        to: u32,
    ) -> Result<Vec<DayCount>, StoreError> {
        let tx = self.with_db(|db| db.begin_read().map_err(|e| self.failed(e)))?;
        let t = tx.open_table(USAGE).map_err(|e| self.failed(e))?;
        let mut out = Vec::new();
        let mut push = |row: UsageRow| -> Result<(), StoreError> {
            let (k, v) = row.map_err(|e| self.failed(e))?;
            let (p, name, day) = k.value();
            if p == plan && (from..=to).contains(&day) && key.is_none_or(|key| key == name) {
                out.push(DayCount {
                    plan: p.to_string(),
                    key: name.to_string(),
                    day,
                    count: v.value(),
                });
            }
            Ok(())
        };
        match key {
            Some(k) => {
                for row in t
                    .range((plan, k, from)..=(plan, k, to))
                    .map_err(|e| self.failed(e))?
                {
                    push(row)?;
                }
            }
            // Tuples order by plan first: the plan's rows are one contiguous run.
            None => {
                for row in t.range((plan, "", 0)..).map_err(|e| self.failed(e))? {
                    let stop = row.as_ref().is_ok_and(|(k, _)| k.value().0 != plan);
                    if stop {
                        break;
                    }
                    push(row)?;
                }
            }
        }
        Ok(out)
    }
}

/// Lower-case hex for digests in JSON.
pub(crate) mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        super::unhex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

pub fn hex(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
