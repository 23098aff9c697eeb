//! Bounded polling: the only way the harness waits for anything.
//!
//! A sleep says "this should be long enough"; a poll says "this is the condition, this is how long
//! we are prepared to wait, and this is what we saw last". Every wait in conform goes through
//! [`wait_for`], so a timeout always reports its condition, its ceiling and its last observation,
//! and a wait can end early when the thing being waited on has died (a candidate that exits
//! before it listens fails fast instead of burning the whole ceiling).
//!
//! The shape follows omicron's `poll::wait_for_condition`, with an explicit `Abort` state.

use std::future::Future;
use std::time::{Duration, Instant};

/// What one look at the condition found.
#[derive(Debug)]
pub enum Poll<T> {
    /// The condition holds; stop waiting and return this value.
    Ready(T),
    /// Not yet; the string says what was seen, for the timeout message.
    NotYet(String),
    /// The condition can never hold any more (for example the process exited); stop now.
    Abort(String),
}

/// Why a wait ended without its condition.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PollError {
    /// The ceiling passed.
    #[error("timed out after {waited:?} (ceiling {ceiling:?}) waiting for {what}; last seen: {last_seen}")]
    TimedOut {
        /// The condition, in words.
        what: String,
        /// The bound that was given.
        ceiling: Duration,
        /// How long was actually waited.
        waited: Duration,
        /// The last observation.
        last_seen: String,
    },
    /// The condition became impossible.
    #[error("gave up waiting for {what} after {waited:?}: {reason}")]
    Aborted {
        /// The condition, in words.
        what: String,
        /// How long was waited before giving up.
        waited: Duration,
        /// Why it can never hold.
        reason: String,
    },
}

impl PollError {
    /// The last thing seen (or the abort reason).
    pub fn last_seen(&self) -> &str {
        match self {
            PollError::TimedOut { last_seen, .. } => last_seen,
            PollError::Aborted { reason, .. } => reason,
        }
    }
}

/// Look at `check` every `interval` until it is ready, aborts, or `ceiling` passes.
///
/// `check` is always called at least once, and once more at the ceiling, so a condition that
/// becomes true just as time runs out is still seen.
#[expect(
    clippy::disallowed_methods,
    reason = "this is the pacing of the polled condition itself"
)]
pub async fn wait_for<T, F, Fut>(
    what: impl Into<String>,
    ceiling: Duration,
    interval: Duration,
    mut check: F,
) -> Result<T, PollError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Poll<T>>,
{
    let what = what.into();
    let start = Instant::now();
    let deadline = start + ceiling;
    loop {
        let last_seen = match check().await {
            Poll::Ready(value) => return Ok(value),
            Poll::Abort(reason) => {
                return Err(PollError::Aborted {
                    what,
                    waited: start.elapsed(),
                    reason,
                });
            }
            Poll::NotYet(seen) => seen,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(PollError::TimedOut {
                what,
                ceiling,
                waited: start.elapsed(),
                last_seen,
            });
        }
        // This is the paced re-check of a polled condition, never a wait in its own right.
        tokio::time::sleep_until((now + interval).min(deadline).into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_once_ready() {
        let n = AtomicU32::new(0);
        let got = wait_for(
            "third look",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || async {
                let seen = n.fetch_add(1, Ordering::SeqCst);
                if seen == 2 {
                    Poll::Ready(seen)
                } else {
                    Poll::NotYet(format!("look {seen}"))
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(got, 2);
    }

    #[tokio::test]
    async fn timeout_reports_last_seen() {
        let err = wait_for("never", Duration::from_millis(20), Duration::from_millis(5), || async {
            Poll::<()>::NotYet("still no".into())
        })
        .await
        .unwrap_err();
        assert!(matches!(err, PollError::TimedOut { .. }));
        assert_eq!(err.last_seen(), "still no");
        assert!(err.to_string().contains("never"), "{err}");
    }

    #[tokio::test]
    async fn abort_ends_early() {
        let start = Instant::now();
        let err = wait_for("doomed", Duration::from_secs(30), Duration::from_millis(5), || async {
            Poll::<()>::Abort("process exited with code 1".into())
        })
        .await
        .unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(matches!(err, PollError::Aborted { .. }));
        assert!(err.to_string().contains("exited with code 1"));
    }
}
