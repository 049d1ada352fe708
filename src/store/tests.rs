use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("portico-store-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn count(plan: &str, key: &str, day: u32, count: u64) -> DayCount {
    DayCount {
        plan: plan.into(),
        key: key.into(),
        day,
        count,
    }
}

#[test]
fn round_trip_across_reopen() {
    let dir = TempDir::new();
    let key = StoredKey {
        name: "bob".into(),
        sha256: [7; 32],
        plan: Some("gold".into()),
        created: 1_700_000_000,
    };
    {
        let s = Store::open(&dir.0).unwrap();
        s.put_key(&key).unwrap();
        s.put_key(&StoredKey {
            name: "eve".into(),
            sha256: [9; 32],
            plan: None,
            created: 1,
        })
        .unwrap();
        assert!(s.delete_key("eve").unwrap());
        assert!(!s.delete_key("eve").unwrap());
        s.put_revoked("alice", &[1; 32]).unwrap();
        s.write_usage(&[
            count("gold", "bob", 100, 5),
            count("gold", "bob", 101, 7),
            count("gold", "carol", 101, 1),
            count("silver", "bob", 101, 99),
            count("gol", "x", 101, 1),
        ])
        .unwrap();
        // Absolute counts: a later write replaces.
        s.write_usage(&[count("gold", "bob", 101, 8)]).unwrap();
    }
    let s = Store::open(&dir.0).unwrap();
    assert_eq!(s.keys().unwrap(), vec![key]);
    assert_eq!(s.revoked().unwrap(), vec![("alice".to_string(), [1; 32])]);
    assert_eq!(
        s.usage("gold", None, 0, 1000).unwrap(),
        vec![
            count("gold", "bob", 100, 5),
            count("gold", "bob", 101, 8),
            count("gold", "carol", 101, 1)
        ]
    );
    assert_eq!(
        s.usage("gold", Some("bob"), 101, 101).unwrap(),
        vec![count("gold", "bob", 101, 8)]
    );
    assert!(s.usage("bronze", None, 0, 1000).unwrap().is_empty());
}

#[test]
fn a_corrupt_file_is_an_error_never_a_reset() {
    let dir = TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join(FILE_NAME);
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &garbage).unwrap();
    let err = Store::open(&dir.0)
        .err()
        .expect("a corrupt file must not open");
    assert!(matches!(err, StoreError::Corrupt(..)), "{err}");
    assert!(err.to_string().contains(FILE_NAME), "{err}");
    // Untouched: the operator can still inspect or restore it.
    assert_eq!(std::fs::read(&file).unwrap(), garbage);

    // A real store cut short.
    let dir = TempDir::new();
    {
        let s = Store::open(&dir.0).unwrap();
        s.write_usage(&[count("gold", "bob", 100, 5)]).unwrap();
    }
    let file = dir.0.join(FILE_NAME);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 3]).unwrap();
    assert!(Store::open(&dir.0).is_err());
}

#[test]
fn one_process_at_a_time() {
    let dir = TempDir::new();
    let _s = Store::open(&dir.0).unwrap();
    assert!(matches!(Store::open(&dir.0), Err(StoreError::InUse(_))));
}

#[test]
fn hex_round_trip() {
    let d = [0xab; 32];
    assert_eq!(unhex(&hex(&d)), Some(d));
    assert_eq!(unhex("zz"), None);
}

#[test]
fn a_pinned_name_survives_reopen_and_later_names() {
    let dir = TempDir::new();
    let s = Store::open(&dir.0).unwrap();
    assert_eq!(s.pinned_name("node", "web-1:8080").unwrap(), "web-1:8080");
    assert_eq!(s.pinned_name("node", "web-1:9090").unwrap(), "web-1:8080");
    drop(s);
    let s = Store::open(&dir.0).unwrap();
    assert_eq!(s.pinned_name("node", "other").unwrap(), "web-1:8080");
    assert_eq!(s.pinned_name("else", "other").unwrap(), "other");
}

/// Cluster key changes Redis has not taken outlive the process (a reopen), once each.
#[test]
fn pending_cluster_key_writes_survive_a_reopen_until_forgotten() {
    let dir = TempDir::new();
    {
        let s = Store::open(&dir.0).unwrap();
        s.put_key_write("revoke 0 a", b"{\"t\":\"revoke\"}")
            .unwrap();
        s.put_key_write("undo f", b"{\"t\":\"undo\"}").unwrap();
        s.put_key_write("undo f", b"{\"t\":\"undo\"}").unwrap();
    }
    let s = Store::open(&dir.0).unwrap();
    let ids: Vec<String> = s.key_writes().unwrap().into_iter().map(|w| w.0).collect();
    assert_eq!(ids, ["revoke 0 a", "undo f"]);
    s.delete_key_write("undo f").unwrap();
    assert_eq!(s.key_writes().unwrap().len(), 1);
}

/// An empty file is no store: redb would take it for a new one, and revoked keys would
/// serve again with every count at zero.
#[test]
fn an_empty_file_stops_the_open() {
    let dir = TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join(FILE_NAME), b"").unwrap();
    match Store::open(&dir.0) {
        Err(StoreError::Corrupt(_, why)) => assert_eq!(why, "the file is empty (0 bytes)"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("an empty file opened as a new store"),
    }
}

/// After an I/O error redb refuses every operation until the database is opened again:
/// the store reopens it at its next operation, and nothing committed is lost.
#[test]
fn the_store_reopens_after_an_io_error() {
    let dir = TempDir::new();
    let store = Store::open(&dir.0).unwrap();
    let key = StoredKey {
        name: "leaked".into(),
        sha256: [1; 32],
        plan: None,
        created: 1,
    };
    store.put_key(&key).unwrap();
    // What `failed` does when redb reports an I/O error.
    assert!(matches!(
        store.failed(redb::StorageError::PreviousIo),
        StoreError::Io(_)
    ));
    assert!(store.broken.load(Ordering::Acquire));
    assert_eq!(store.keys().unwrap(), [key]);
    assert!(!store.broken.load(Ordering::Acquire));
    assert!(store.delete_key("leaked").unwrap());
    assert!(store.keys().unwrap().is_empty());
}

/// A directory where the file should be is no corruption: the message says so, without
/// advice to move a healthy file away.
#[test]
fn a_directory_in_place_of_the_file_is_an_open_error() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.0.join(FILE_NAME)).unwrap();
    match Store::open(&dir.0) {
        Err(e @ StoreError::Open(..)) => assert!(e.to_string().contains("cannot open"), "{e}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a directory opened as a store"),
    }
}
