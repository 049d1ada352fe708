//! `GET /api-keys`, `POST /api-keys`, `DELETE /api-keys/{name}`. A created key's value is
//! in the POST answer and nowhere else: the store and the workers keep its SHA-256.

use serde_json::{json, Value};

use super::http::{Request, Response};
use super::routes::Params;
use super::AdminCtx;
use crate::cluster;
use crate::cluster::admin::{Published, Revoked};
use crate::global::keys::digest;
use crate::global::registry::{KeyError, Source, REVOKED_VALUE};
use crate::store::StoredKey;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn list(ctx: &AdminCtx, _: &Request, _: &Params) -> Response {
    let items: Vec<Value> = ctx
        .shared
        .keys
        .list()
        .into_iter()
        .map(|k| {
            json!({
                "name": k.name,
                "plan": k.plan,
                "source": match k.source { Source::Config => "config", Source::Admin => "admin" },
                "createdDate": k.created,
            })
        })
        .collect();
    Response::json(200, &json!({ "items": items }))
}

/// The fields `POST /api-keys` takes.
const CREATE_FIELDS: [&str; 3] = ["name", "plan", "value"];

pub fn create(ctx: &AdminCtx, req: &Request, _: &Params) -> Response {
    // Until the key is in Redis too (or taken back), a read of the cluster's keys that
    // lacks it is not applied here (`global::key_changes`).
    let _changing = ctx.shared.keys.changes.begin();
    let members = match serde_json::from_slice::<Members>(&req.body) {
        Ok(Members(m)) => m,
        _ => {
            return Response::message(
                400,
                "expected a JSON object like {\"name\": \"...\", \"plan\": \"...\"}",
            )
        }
    };
    // A field given twice is refused: a `Value` keeps the last, so
    // `{"plan":"gold","plan":null}` made a key in no plan, valid on every stage.
    for (i, (field, _)) in members.iter().enumerate() {
        if members[..i].iter().any(|(f, _)| f == field) {
            return Response::message(400, &format!("field {field:?} given twice"));
        }
    }
    let body = Value::Object(members.into_iter().collect());
    // A field this API does not take is refused, not ignored: {"enabled": false} (API
    // Gateway's CreateApiKey field) or a misspelt "plan_name" would otherwise create a
    // live key, or one in no plan, while the caller believes otherwise.
    if let Some(field) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| !CREATE_FIELDS.contains(&k.as_str())))
    {
        return Response::message(
            400,
            &format!(
                "unknown field {field:?}: a key takes name, plan and value, and is live once \
                 created (DELETE /api-keys/{{name}} revokes it)"
            ),
        );
    }
    let text = |field: &str| -> Result<Option<String>, Response> {
        match body.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Response::message(400, &format!("{field} must be a string"))),
        }
    };
    let (name, plan, value) = match (text("name"), text("plan"), text("value")) {
        (Ok(Some(n)), Ok(p), Ok(v)) => (n, p, v),
        (Ok(None), ..) => return Response::message(400, "name is required"),
        (Err(r), ..) | (_, Err(r), _) | (.., Err(r)) => return r,
    };
    let Some(store) = &ctx.shared.store else {
        return Response::message(503, "no state store");
    };
    let value = match ctx.shared.keys.create(store, &name, plan.as_deref(), value) {
        Ok(value) => value,
        Err(e) => return error(e),
    };
    if let Some(c) = cluster::get() {
        // Every node takes the key from Redis; a key Redis did not take is not created.
        let stored = StoredKey {
            name: name.clone(),
            sha256: digest(value.as_bytes()),
            plan: plan.clone(),
            created: now_secs(),
        };
        let refused = match cluster::admin::put_key(c, &stored) {
            Published::Live => None,
            Published::NameTaken => Some(Response::message(
                409,
                &format!("a key named {name} already exists in the cluster"),
            )),
            // What a single node answers (`KeyRegistry::create`).
            Published::ValueTaken => Some(error(KeyError::Invalid(
                "that value is already in use by another key",
            ))),
            // Revoked through another node since this one last read Redis.
            Published::ValueRevoked => Some(error(KeyError::Invalid(REVOKED_VALUE))),
            Published::NotCreated { cause, removing } => {
                tracing::error!(%cause, key = %name, removing, "admin: cannot publish the key to the cluster");
                Some(Response::message(
                    503,
                    if removing {
                        "the cluster's Redis did not confirm the write; the key was not created: \
                         this node removes it from Redis if it got there, as soon as Redis answers"
                    } else {
                        "the cluster's Redis is unavailable; the key was not created"
                    },
                ))
            }
        };
        if let Some(r) = refused {
            let _ = ctx.shared.keys.revoke(store, &name);
            return r;
        }
    }
    Response::json(201, &json!({ "name": name, "value": value, "plan": plan }))
}

pub fn revoke(ctx: &AdminCtx, _: &Request, params: &Params) -> Response {
    // Likewise: a read that still has the key must not bring it back here.
    let _changing = ctx.shared.keys.changes.begin();
    let name = params.get("name").unwrap_or_default();
    let Some(store) = &ctx.shared.store else {
        return Response::message(503, "no state store");
    };
    let found = ctx.shared.keys.digest_of(name);
    let hidden = match ctx.shared.keys.revoke(store, name) {
        Ok(hidden) => hidden,
        Err(e) => return error(e),
    };
    if let (Some(c), Some((source, d))) = (cluster::get(), found) {
        // A created key the config key hid under that name goes first (removed only if
        // Redis still has that very key, so a retry cannot take a key created later),
        // else the other nodes would serve it once the config key is revoked.
        let writes = [
            hidden.map(|h| (h, false)),
            Some((d, source == Source::Config)),
        ];
        let mut pending = None;
        for (d, config) in writes.into_iter().flatten() {
            if let Revoked::Pending(cause) = cluster::admin::revoke_key(c, name, &d, config) {
                pending.get_or_insert(cause);
            }
        }
        if let Some(cause) = pending {
            tracing::error!(%cause, key = %name, "admin: cannot revoke the key in the cluster");
            return Response::message(
                503,
                "revoked on this node; the cluster's Redis did not take the revocation, so the \
                 other nodes still honour the key: this node writes it to Redis as soon as Redis \
                 answers (it keeps it in its state_dir meanwhile, also across a restart)",
            );
        }
    }
    Response::empty(204)
}

fn error(e: KeyError) -> Response {
    let status = match &e {
        KeyError::Conflict(_) => 409,
        KeyError::NotFound(_) => 404,
        KeyError::UnknownPlan(_) | KeyError::Invalid(_) => 400,
        KeyError::Store(_) => {
            tracing::error!(error = %e, "admin: state store failed");
            500
        }
    };
    Response::message(status, &e.to_string())
}

/// A JSON object's members in order, a name given twice kept twice.
struct Members(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(member) = m.next_entry()? {
                    out.push(member);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Visit)
    }
}
