//! A WebSocket API's `$default` stage: its events say `"stage": "$default"`, and the
//! callback URL a function builds from them, API Gateway's `https://{domainName}/{stage}`,
//! is `/$default/@connections/{id}`. It was a
//! 404; the stage's root path (`/@connections/{id}`) works as before.

mod common;

use std::io::Write;
use std::time::Duration;

use common::ws::*;
use common::*;

#[test]
fn the_default_stages_callback_url_reaches_its_connections() {
    require_websockets();
    for driver in DRIVERS {
        let dir = temp_dir("ws-default-stage");
        let cfg =
            ws_api_config(free_port(), &dir, "", ECHO_ROUTES).replace("prod: {}", "$default: {}");
        let p = Portico::start(&cfg, driver);
        let mut s = p.connect();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let head = raw_handshake(&mut s, "/", "");
        assert!(head.starts_with("HTTP/1.1 101"), "{driver}: {head}");
        s.write_all(&masked_text(b"who am i")).unwrap();
        let notice: serde_json::Value =
            serde_json::from_slice(&read_small_frame(&mut s).1).unwrap();
        let id = notice["connectionId"].as_str().unwrap().to_string();
        for (endpoint, data) in [
            (format!("http://{}/$default", p.addr), "by stage name"),
            (format!("http://{}/%24default", p.addr), "encoded"),
            (format!("http://{}", p.addr), "by root"),
        ] {
            let out = boto3_connections(&endpoint, "post", &id, Some(data));
            assert_eq!(out["ok"], true, "{driver} {endpoint}: {out}");
            assert_eq!(
                read_small_frame(&mut s),
                (1, data.as_bytes().to_vec()),
                "{driver}"
            );
        }
        // Only a `$default` stage's name is taken off.
        let out = boto3_connections(&format!("http://{}/prod", p.addr), "post", &id, Some("x"));
        assert_ne!(out["ok"], true, "{driver}: {out}");
        p.stop();
    }
}
