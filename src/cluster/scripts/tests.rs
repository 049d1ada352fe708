//! The key scripts against a real Redis: an answer that says nothing was written must
//! be true (a Lua error rolls nothing back).

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;

use super::*;
use crate::cluster::test_redis::TestRedis;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const D1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn json(d: &str) -> String {
    format!(r#"{{"sha256":"{d}","plan":null,"created":1}}"#)
}

async fn create(m: &mut MultiplexedConnection, name: &str, d: &str) -> redis::RedisResult<i64> {
    let mut inv = create_key().prepare_invoke();
    inv.key("t:keys")
        .key("t:keys:v")
        .key("t:fence")
        .key("t:keys:d");
    inv.key("t:revoked");
    inv.arg(name).arg(json(d)).arg(d);
    inv.invoke_async(m).await
}

async fn revoke(
    m: &mut MultiplexedConnection,
    name: &str,
    d: &str,
    config: bool,
) -> redis::RedisResult<i64> {
    let mut inv = revoke_key().prepare_invoke();
    inv.key("t:keys")
        .key("t:keys:v")
        .key("t:revoked")
        .key("t:keys:d");
    inv.arg(name).arg(d).arg(u8::from(config));
    inv.invoke_async(m).await
}

async fn undo(m: &mut MultiplexedConnection, name: &str, d: &str) -> redis::RedisResult<i64> {
    let mut inv = undo_key().prepare_invoke();
    inv.key("t:keys")
        .key("t:keys:v")
        .key("t:fence")
        .key("t:keys:d");
    inv.arg(name).arg(json(d)).arg(60_000);
    inv.invoke_async(m).await
}

/// What the scripts may write, as it stands.
async fn state(m: &mut MultiplexedConnection) -> (Vec<String>, Vec<String>, Vec<String>, bool) {
    let mut keys: Vec<String> = m.hkeys("t:keys").await.unwrap();
    let mut index: Vec<String> = m.hkeys("t:keys:d").await.unwrap();
    let mut revoked: Vec<String> = m.hkeys("t:revoked").await.unwrap();
    keys.sort();
    index.sort();
    revoked.sort();
    let fenced: bool = m.exists("t:fence").await.unwrap();
    (keys, index, revoked, fenced)
}

/// `keys:v` holding something INCR refuses (written outside Portico): the create wrote
/// the key before its INCR failed, answered 503 "not created", and the key went live on
/// every node once `keys:v` was fixed. Likewise a revocation answered "not taken" had
/// deleted the key, and an undo had fenced and deleted it, none of it announced.
#[test]
fn a_foreign_version_makes_each_key_script_fail_before_it_writes() {
    let redis = TestRedis::start();
    rt().block_on(async {
        let mut m = redis.connect().await;
        assert_eq!(create(&mut m, "a", D1).await.unwrap(), 1);
        let before = state(&mut m).await;
        assert_eq!(before.0, ["a"]);
        for foreign in [
            "abc",
            "1.5",
            "05",
            "99999999999999999999",
            "9223372036854775807",
        ] {
            let _: () = m.set("t:keys:v", foreign).await.unwrap();
            assert!(create(&mut m, "b", D2).await.is_err(), "{foreign}");
            assert!(revoke(&mut m, "a", D1, false).await.is_err(), "{foreign}");
            assert!(revoke(&mut m, "cfg", D2, true).await.is_err(), "{foreign}");
            assert!(undo(&mut m, "a", D1).await.is_err(), "{foreign}");
            assert_eq!(state(&mut m).await, before, "keys:v {foreign:?}");
        }
        // Another type there: refused the same way.
        let _: () = m.del("t:keys:v").await.unwrap();
        let _: () = m.hset("t:keys:v", "x", "1").await.unwrap();
        assert!(create(&mut m, "b", D2).await.is_err());
        assert!(revoke(&mut m, "a", D1, false).await.is_err());
        assert!(undo(&mut m, "a", D1).await.is_err());
        assert_eq!(state(&mut m).await, before);
        // A count again: each writes, and says so in the version.
        let _: () = m.del("t:keys:v").await.unwrap();
        let _: () = m.set("t:keys:v", "-3").await.unwrap();
        assert_eq!(create(&mut m, "b", D2).await.unwrap(), 1);
        assert_eq!(revoke(&mut m, "a", D1, false).await.unwrap(), 1);
        assert_eq!(revoke(&mut m, "cfg", D1, true).await.unwrap(), 1);
        assert_eq!(undo(&mut m, "b", D2).await.unwrap(), 1);
        let v: i64 = m.get("t:keys:v").await.unwrap();
        assert_eq!(v, 1);
        let (keys, index, revoked, fenced) = state(&mut m).await;
        assert!(keys.is_empty() && index.is_empty() && fenced);
        assert_eq!(revoked, ["cfg"]);
    });
}

/// A revoked config key's value is refused by the create, under any name: a node that
/// had not read the revocation yet created it again, and every node served it.
#[test]
fn a_create_refuses_a_revoked_config_keys_value() {
    let redis = TestRedis::start();
    rt().block_on(async {
        let mut m = redis.connect().await;
        assert_eq!(revoke(&mut m, "ops", D1, true).await.unwrap(), 1);
        assert_eq!(create(&mut m, "ops2", D1).await.unwrap(), 3);
        assert_eq!(create(&mut m, "ops", D1).await.unwrap(), 3);
        let (keys, index, ..) = state(&mut m).await;
        assert!(keys.is_empty() && index.is_empty());
        assert_eq!(create(&mut m, "ops2", D2).await.unwrap(), 1);
    });
}
