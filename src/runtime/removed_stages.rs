//! WebSocket stages a reload removed while this worker had connections open on them,
//! each with the last generation that had it.
//!
//! A WebSocket connection routes each message by the current config while it still has
//! the connection's API and stage; once a reload removed them, by the last config that
//! had them. A connection only learns a config when a message of its own is routed, so
//! an idle one that missed the reload removing a route, and then saw its API removed,
//! knew no config newer than the one it opened on: the removed route answered again.
//! The worker sees every generation (each reload waits for every worker's tick), so it
//! records here, as it switches, the last one that had each removed stage, and keeps it
//! for as long as it has connections open on that stage.

use std::cell::RefCell;
use std::rc::Rc;

use super::workers::Generation;
use crate::metrics::cells::read;

struct Removed {
    api: String,
    stage: String,
    last: Rc<Generation>,
}

#[derive(Default)]
pub struct RemovedStages(RefCell<Vec<Removed>>);

/// Where WebSocket API `api`'s stage `stage` is in `g`, if `g` has it.
pub fn locate(g: &Generation, api: &str, stage: &str) -> Option<(usize, usize)> {
    let a = g.snap.apis.iter().position(|x| x.name == api)?;
    let found = &g.snap.apis[a];
    found.websocket.as_ref()?;
    let s = found.stages.iter().position(|x| x.name == stage)?;
    Some((a, s))
}

/// This worker's open connections on `g`'s WebSocket stage at `(a, s)`.
fn open_on(g: &Generation, (a, s): (usize, usize)) -> u64 {
    g.ws_open
        .get(a)
        .and_then(|st| st.get(s))
        .map_or(0, |c| read(c))
}

impl RemovedStages {
    /// The worker switched from `prev` to `next`: remembers `prev` for each WebSocket
    /// stage it had and `next` has not, where connections are open; forgets stages
    /// `next` has again and those whose last connection closed.
    pub fn switched(&self, prev: &Rc<Generation>, next: &Generation) {
        let mut list = self.0.borrow_mut();
        list.retain(|r| {
            locate(next, &r.api, &r.stage).is_none()
                && locate(&r.last, &r.api, &r.stage).is_some_and(|at| open_on(&r.last, at) > 0)
        });
        for (a, api) in prev.snap.apis.iter().enumerate() {
            if api.websocket.is_none() {
                continue;
            }
            for (s, stage) in api.stages.iter().enumerate() {
                if open_on(prev, (a, s)) == 0 || locate(next, &api.name, &stage.name).is_some() {
                    continue;
                }
                list.retain(|r| r.api != api.name || r.stage != stage.name);
                list.push(Removed {
                    api: api.name.clone(),
                    stage: stage.name.clone(),
                    last: prev.clone(),
                });
            }
        }
    }

    /// The last generation that had this removed stage, if connections on it were open
    /// when it was removed.
    pub fn last_with(&self, api: &str, stage: &str) -> Option<Rc<Generation>> {
        let list = self.0.borrow();
        let r = list.iter().find(|r| r.api == api && r.stage == stage)?;
        Some(r.last.clone())
    }
}
