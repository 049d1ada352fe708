//! Whether Redis passes this node's channel to its listener (`connections::listen`):
//! redis-rs 0.32 takes a refused SUBSCRIBE's `NOPERM` answer for success, so the
//! listener asks Redis, at subscribe and every [`RECHECK`] while subscribed.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use tracing::error;

/// How often a subscribed listener checks that Redis still passes it messages.
pub(super) const RECHECK: Duration = Duration::from_secs(5);

/// The no-op message [`listeners`] publishes.
pub(super) const PROBE: &str = r#"{"t":"probe"}"#;

pub(super) const NO_LISTENER: &str =
    "Redis passes this node's channel to no one after its SUBSCRIBE";

/// Says at error, at most once a minute, that Redis refuses this node's SUBSCRIBE.
pub(super) fn say_refused(said: &mut Option<std::time::Instant>, cause: &str) {
    if said.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
        *said = Some(std::time::Instant::now());
        error!(%cause, "cluster: Redis refuses this node's SUBSCRIBE (an ACL without its channels?): @connections calls for connections on other nodes answer 503, and other nodes' cache flushes do not reach it; retrying");
    }
}

/// What Redis says of this node's own channel.
pub(super) enum Listening {
    /// How many clients listen on it: 0 when this node's SUBSCRIBE was refused, which
    /// redis-rs 0.32 takes for success (it reads the `NOPERM` answer as the
    /// subscription's).
    Count(i64),
    /// Redis refuses to publish there (an ACL without the channel): no other node's call
    /// can reach this one either.
    Refused(String),
    /// Cannot be asked now (no connection yet, Redis slow).
    Unknown,
}

/// Asked with `PUBSUB NUMSUB`, else (an ACL without it) by publishing a no-op message
/// there, which the listener drops.
pub(super) async fn listeners(
    conn: &tokio::sync::watch::Receiver<Option<MultiplexedConnection>>,
    channel: &str,
    timeout: Duration,
) -> Listening {
    let Some(mut m) = conn.borrow().clone() else {
        return Listening::Unknown;
    };
    let mut numsub = redis::cmd("PUBSUB");
    numsub.arg("NUMSUB").arg(channel);
    let asked = tokio::time::timeout(timeout, numsub.query_async::<(String, i64)>(&mut m)).await;
    if let Ok(Ok((_, n))) = asked {
        return Listening::Count(n);
    }
    let published = tokio::time::timeout(timeout, m.publish::<_, _, i64>(channel, PROBE)).await;
    match published {
        Ok(Ok(n)) => Listening::Count(n),
        Ok(Err(err)) if err.code().is_some() => Listening::Refused(format!(
            "PUBLISH to its channel: {}",
            super::alarm::cause(&err)
        )),
        _ => Listening::Unknown,
    }
}
