//! The gateway's lifecycle as an operator drives it: reloads through the admin API and
//! signals while clients are connected, and the stop.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// A mock route on the given plain listeners, with the admin API on `admin_port`.
fn listeners_config(listen: &[u16], admin_port: u16) -> String {
    let listen: Vec<String> = listen
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    format!(
        r#"state_dir: "{state}"
server:
  listen: [{listen}]
  workers: 2
admin: {{ listen: "127.0.0.1:{admin_port}", token: t0ken }}
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "GET /a": {{ integration: {{ type: mock, status: 200, body: a }} }}
"#,
        state = temp_dir("state").display(),
        listen = listen.join(", ")
    )
}

/// `POST /reload` answers once the reload is in effect on every worker: an address it
/// adds accepts at once and one it removes refuses at once. Workers used to apply
/// listener changes on their next tick, after the answer: a deploy script that reloaded
/// then called the new address was refused, and the removed one still served.
#[test]
fn an_admin_reload_answers_once_listeners_follow_it() {
    for driver in DRIVERS {
        let (first, second, admin_port) = (free_port(), free_port(), free_port());
        let one = listeners_config(&[first], admin_port);
        let both = listeners_config(&[first, second], admin_port);
        let p = Portico::start_at(&one, driver, first);
        let admin_addr = ([127, 0, 0, 1], admin_port).into();
        let get = |port: u16| {
            TcpStream::connect(("127.0.0.1", port)).map(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                std::io::Write::write_all(
                    &mut s,
                    b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                )
                .unwrap();
                read_response(&mut std::io::BufReader::new(s), false).map(|r| r.status)
            })
        };
        for round in 0..5 {
            std::fs::write(&p.config, &both).unwrap();
            let r = admin(admin_addr, "POST", "/reload", Some("t0ken"), None);
            assert_eq!(r.status, 200, "{driver}: {}", r.text());
            match get(second) {
                Ok(Ok(200)) => {}
                other => panic!("{driver} round {round}: the added address: {other:?}"),
            }
            std::fs::write(&p.config, &one).unwrap();
            let r = admin(admin_addr, "POST", "/reload", Some("t0ken"), None);
            assert_eq!(r.status, 200, "{driver}: {}", r.text());
            assert!(
                get(second).is_err(),
                "{driver} round {round}: the removed address still accepts"
            );
            assert!(matches!(get(first), Ok(Ok(200))), "{driver}: the kept one");
        }
    }
}
