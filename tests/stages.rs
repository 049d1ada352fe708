//! Stages end to end: stage variables in upstreams, paths and mock bodies; the canary's
//! share of traffic, its variable overrides, and what `$context` and Lambda events say
//! about it while clients can't tell.

mod common;

use common::*;

fn config(blue: &Origin, green: &Origin, f: &Function, percent: &str) -> String {
    let (blue, green, url) = (blue.addr, green.addr, f.url());
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
upstreams:
  blue: {{ targets: ["{blue}"] }}
  green: {{ targets: ["{green}"] }}
apis:
  shop:
    stages:
      prod:
        variables: {{ backend: blue, version: v1, side: main }}
        canary: {{ percent: {percent}, variables: {{ backend: green, side: canary }} }}
      beta:
        variables: {{ backend: green, version: v2, side: beta }}
    routes:
      "GET /which": {{ integration: {{ type: mock, body: "${{stageVariables.side}}" }} }}
      "GET /users/{{id}}":
        integration: {{ type: http, upstream: "${{stageVariables.backend}}", path: "/${{stageVariables.version}}/users/{{id}}" }}
        parameters:
          "overwrite:header.x-stage": "$context.stage"
          "overwrite:header.x-canary": "$context.isCanaryRequest"
          "overwrite:header.x-side": "$stageVariables.side"
      "GET /fn": {{ integration: {{ type: lambda, url: "{url}" }} }}
"#
    )
}

fn origins() -> (Origin, Origin, Function) {
    let blue = Origin::start(|req, s| {
        respond(
            s,
            200,
            &[("content-type", "text/plain")],
            format!("user {}", req.target).as_bytes(),
        );
        true
    });
    let green = Origin::start(|req, s| {
        respond(
            s,
            200,
            &[("content-type", "text/plain")],
            format!("user {}", req.target).as_bytes(),
        );
        true
    });
    let f = Function::start(|e| {
        FnReply::Json(format!(
            r#"{{"stage":{},"side":{}}}"#,
            e["requestContext"]["stage"], e["stageVariables"]["side"]
        ))
    });
    (blue, green, f)
}

#[test]
fn stage_variables_pick_upstream_path_and_mock_body() {
    let (blue, green, f) = origins();
    for driver in DRIVERS {
        let p = Portico::start(&config(&blue, &green, &f, "0"), driver);
        assert_eq!(p.get("/prod/which").text(), "main", "{driver}");
        assert_eq!(p.get("/beta/which").text(), "beta");
        let r = p.get("/prod/users/7");
        assert_eq!(r.text(), "user /v1/users/7");
        assert_eq!(blue.last().target, "/v1/users/7");
        let r = p.get("/beta/users/8");
        assert_eq!(r.text(), "user /v2/users/8");
        assert_eq!(green.last().header("x-stage"), Some("beta"));
        assert_eq!(green.last().header("x-side"), Some("beta"));
        assert_eq!(
            p.get("/beta/fn").text(),
            r#"{"stage":"beta","side":"beta"}"#
        );
    }
}

#[test]
fn canary_takes_its_share_with_its_own_variables() {
    let (blue, green, f) = origins();
    for driver in DRIVERS {
        let p = Portico::start(&config(&blue, &green, &f, "25.5"), driver);
        // Several connections, so both workers draw.
        let mut clients: Vec<Client> = (0..4).map(|_| Client::new(&p)).collect();
        let n = 3000;
        let mut canary = 0;
        for i in 0..n {
            let r = clients[i % 4].get("/prod/which", "t");
            match r.text().as_str() {
                "canary" => canary += 1,
                "main" => {}
                other => panic!("unexpected body {other:?}"),
            }
        }
        let share = 100.0 * canary as f64 / n as f64;
        assert!(
            (share - 25.5).abs() <= 3.0,
            "{driver}: canary served {share:.1}% of {n} requests, configured 25.5%"
        );

        // The canary's requests go to its backend with its variables, still in stage prod.
        let (blue_before, green_before) = (
            blue.seen.lock().unwrap().len(),
            green.seen.lock().unwrap().len(),
        );
        for i in 0..200 {
            let r = clients[i % 4].get(&format!("/prod/users/{i}"), "t");
            assert_eq!(r.text(), format!("user /v1/users/{i}"));
            // Clients can't tell which side answered.
            assert!(r
                .headers
                .iter()
                .all(|(n, v)| !n.contains("canary") && !v.contains("canary")));
        }
        let blue_seen = blue.seen.lock().unwrap()[blue_before..].to_vec();
        let green_seen = green.seen.lock().unwrap()[green_before..].to_vec();
        assert!(!blue_seen.is_empty() && !green_seen.is_empty(), "{driver}");
        assert_eq!(blue_seen.len() + green_seen.len(), 200);
        for (seen, canary, side) in [
            (&blue_seen, "false", "main"),
            (&green_seen, "true", "canary"),
        ] {
            for s in seen {
                assert_eq!(s.header("x-stage"), Some("prod"));
                assert_eq!(s.header("x-canary"), Some(canary));
                assert_eq!(s.header("x-side"), Some(side));
            }
        }

        // Lambda events carry the stage name and the variables of the side that served.
        let mut sides = std::collections::HashSet::new();
        for i in 0..60 {
            let r = clients[i % 4].get("/prod/fn", "t");
            sides.insert(r.text());
        }
        let want: std::collections::HashSet<String> = [
            r#"{"stage":"prod","side":"main"}"#.to_string(),
            r#"{"stage":"prod","side":"canary"}"#.to_string(),
        ]
        .into();
        assert_eq!(sides, want);
    }
}

#[test]
fn canary_at_0_and_100_percent() {
    let (blue, green, f) = origins();
    for (percent, want) in [("0", "main"), ("100", "canary")] {
        let p = Portico::start(&config(&blue, &green, &f, percent), DRIVERS[0]);
        let mut c = Client::new(&p);
        for _ in 0..200 {
            assert_eq!(c.get("/prod/which", "t").text(), want, "{percent}%");
        }
    }
}
