//! WebSocket connections across the nodes of a cluster: `@connections` on node B (its
//! admin API or its stage endpoint) reaches a connection held by node A through the
//! Redis registry and A's node channel; 410 once the connection is gone.

mod common;

use std::net::SocketAddr;

use common::redis::Redis;
use common::ws::*;
use common::*;

fn enc(id: &str) -> String {
    id.replace('=', "%3D")
        .replace('/', "%2F")
        .replace('+', "%2B")
}

fn admin_call(admin: SocketAddr, method: &str, id: &str, body: Option<&str>) -> Response {
    common::admin(
        admin,
        method,
        &format!("/@connections/{}", enc(id)),
        Some("secret"),
        body,
    )
}

#[test]
fn connections_api_on_one_node_reaches_a_connection_on_another() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let (a, _) = cluster_node(&redis, "a", driver);
        let (b, b_admin) = cluster_node(&redis, "b", driver);
        let (mut client, id) = open_learning_id(&a);

        // b's admin API: the owner is found in the registry, the post delivered on a.
        assert!(
            eventually(|| admin_call(b_admin, "POST", &id, Some("from-b")).status == 200),
            "{driver}: POST on b never reached a's connection"
        );
        assert_eq!(
            read_small_frame(&mut client),
            (1, b"from-b".to_vec()),
            "{driver}"
        );
        let r = admin_call(b_admin, "GET", &id, None);
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        let info: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(info["connectedAt"].as_str().is_some(), "{driver}: {info}");

        // b's stage endpoint (a worker's path) too.
        let r = send_to(
            b.addr,
            format!(
                "POST /prod/@connections/{} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nstage",
                enc(&id)
            )
            .as_bytes(),
        );
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        assert_eq!(
            read_small_frame(&mut client),
            (1, b"stage".to_vec()),
            "{driver}"
        );

        // DELETE on b closes it on a; then every node answers 410.
        assert_eq!(
            admin_call(b_admin, "DELETE", &id, None).status,
            204,
            "{driver}"
        );
        assert_eq!(
            read_small_frame(&mut client).0,
            8,
            "{driver}: a close frame"
        );
        drop(client);
        assert!(
            eventually(|| admin_call(b_admin, "POST", &id, Some("late")).status == 410),
            "{driver}: a closed connection must be gone"
        );
        let r = admin_call(b_admin, "GET", &id, None);
        assert_eq!(r.status, 410, "{driver}");
        assert_eq!(r.header("x-amzn-ErrorType"), Some("GoneException"));
        // An id no node ever had.
        assert_eq!(
            admin_call(b_admin, "GET", "AAAAAAAAAAAAAAA=", None).status,
            410
        );
    }
}
