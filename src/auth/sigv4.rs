//! AWS Signature Version 4 verification for `authorization: iam` routes (service
//! `execute-api`, the configured region), against the principals of `iam`.

use super::policy::{Effect, Policy, Statement};
use crate::config::auth::Iam;

/// A principal, compiled: its secret and what it may invoke.
#[derive(Debug)]
pub struct PrincipalRt {
    pub name: String,
    pub access_key_id: String,
    pub secret: String,
    pub session_token: Option<String>,
    pub account_id: String,
    pub user_arn: String,
    pub user_id: String,
    pub policy: Policy,
}

#[derive(Debug, Default)]
pub struct Principals {
    pub region: String,
    pub list: Vec<PrincipalRt>,
}

impl Principals {
    pub fn compile(iam: Option<&Iam>) -> Principals {
        let Some(iam) = iam else {
            return Principals::default();
        };
        let list =
            iam.principals
                .iter()
                .map(|(name, p)| {
                    let stmt = |effect, resources: &[String]| Statement {
                        effect,
                        actions: vec!["execute-api:*".into()],
                        resources: resources.iter().map(|r| r.as_str().into()).collect(),
                    };
                    PrincipalRt {
                        name: name.clone(),
                        access_key_id: p.access_key_id.clone(),
                        secret: p.secret_access_key.clone(),
                        session_token: p.session_token.clone(),
                        account_id: p.account_id.clone(),
                        user_arn: p.user_arn.clone().unwrap_or_else(|| {
                            format!("arn:aws:iam::{}:user/{name}", p.account_id)
                        }),
                        user_id: p.user_id.clone().unwrap_or_else(|| p.access_key_id.clone()),
                        policy: Policy {
                            statements: vec![
                                stmt(Effect::Allow, &p.allow),
                                stmt(Effect::Deny, &p.deny),
                            ],
                        },
                    }
                })
                .collect();
        Principals {
            region: iam.region.clone(),
            list,
        }
    }
}
