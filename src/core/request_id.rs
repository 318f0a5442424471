//! The id of the request being served: the client's `X-Request-Id` when it is a sane
//! token, else a new one. It is carried by the request's task (and, through
//! [`crate::db::Db::run`], by the database work done for it), so that whatever the
//! request causes (log lines, audit events) can name it without passing it around.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

/// A request id: 1 to [`RequestId::MAX_LEN`] ASCII letters, digits and `-_.:`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The longest id accepted from a client.
    pub const MAX_LEN: usize = 64;

    /// The client's id, if it is a sane token: bounded, and only characters that are
    /// safe in a header, a log line and a shell.
    pub fn from_client(value: &str) -> Option<RequestId> {
        let sane = (1..=Self::MAX_LEN).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        sane.then(|| RequestId(value.into()))
    }

    /// A new random id.
    pub fn generate() -> RequestId {
        RequestId(uuid::Uuid::now_v7().simple().to_string().into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

tokio::task_local! {
    static CURRENT: RequestId;
}

thread_local! {
    /// The id carried onto a blocking thread by [`carried`].
    static CARRIED: RefCell<Option<RequestId>> = const { RefCell::new(None) };
}

/// Runs `future` as the request `id`.
pub async fn scope<F: Future>(id: RequestId, future: F) -> F::Output {
    CURRENT.scope(id, future).await
}

/// The id of the request being served here, if any.
pub fn current() -> Option<RequestId> {
    CURRENT
        .try_with(Clone::clone)
        .ok()
        .or_else(|| CARRIED.with_borrow(Clone::clone))
}

/// Runs `f` (on a blocking thread) as the request `id`, taken with [`current`] before
/// the work left the request's task.
pub fn carried<T>(id: Option<RequestId>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<RequestId>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CARRIED.with_borrow_mut(|c| *c = self.0.take());
        }
    }
    let _restore = Restore(CARRIED.with_borrow_mut(|c| std::mem::replace(c, id)));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_tokens_are_taken_from_clients() {
        for ok in ["a", "4bf92f3577b34da6a3ce929d0e0e4736", "req-1_2.3:4"] {
            assert_eq!(RequestId::from_client(ok).unwrap().as_str(), ok);
        }
        let long = "x".repeat(RequestId::MAX_LEN + 1);
        for bad in [
            "",
            "a b",
            "a\nb",
            "<script>",
            "é",
            "a/b",
            "a\"b",
            long.as_str(),
        ] {
            assert_eq!(RequestId::from_client(bad), None, "{bad:?}");
        }
        assert_eq!(RequestId::generate().as_str().len(), 32);
        assert_ne!(RequestId::generate(), RequestId::generate());
    }

    #[tokio::test]
    async fn the_id_follows_the_task_and_is_carried_onto_blocking_threads() {
        assert_eq!(current(), None);
        let id = RequestId::generate();
        let seen = scope(id.clone(), async {
            let here = current();
            let there = tokio::task::spawn_blocking({
                let carried_id = current();
                move || carried(carried_id, current)
            })
            .await
            .unwrap();
            (here, there)
        })
        .await;
        assert_eq!(seen, (Some(id.clone()), Some(id)));
        assert_eq!(current(), None);
        assert_eq!(carried(None, current), None);
    }
}
