//! PostgreSQL: one thread per pooled connection, taking work from one queue in the
//! order it arrived.
//!
//! Work used to go to tokio's blocking pool, whose threads then waited for a
//! connection in r2d2's own wait: every returned connection woke one of them, a thread
//! that had just arrived could take it first, and a request's work took a trip through
//! two queues and two threads' wake-ups. Here as many threads as the pool has
//! connections take the work in turn: it waits in the queue, first come first served,
//! and a thread that finishes a piece takes the next one without sleeping.
//!
//! A piece that waited its caller's whole wait without being taken is given up: its
//! caller answers that the service is unavailable, and it never runs. One that a
//! thread took runs to its end, and its outcome is the caller's answer.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use crate::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// Where a piece of work stands.
const WAITING: u8 = 0;
const TAKEN: u8 = 1;
const GIVEN_UP: u8 = 2;

/// The way to the threads; they end when it is dropped.
pub struct Workers {
    jobs: mpsc::Sender<Job>,
}

impl Workers {
    /// Starts `threads` threads (at least one).
    pub fn start(threads: u32) -> std::io::Result<Workers> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("otpgate-db-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held while waiting for the next piece, and let
                        // go before running it.
                        let next = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match next {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Workers { jobs })
    }

    /// Runs `f` on one of the threads, in its turn, and answers what it returns: a
    /// panic in it is an internal error, and a turn that has not come within `wait`
    /// is [`Error::Unavailable`], with `f` never run.
    pub async fn run<T: Send + 'static>(
        &self,
        wait: Duration,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let state = Arc::new(AtomicU8::new(WAITING));
        let job: Job = Box::new({
            let state = state.clone();
            move || {
                if take(&state, TAKEN) {
                    let outcome = std::panic::catch_unwind(AssertUnwindSafe(f))
                        .unwrap_or_else(|_| Err(Error::internal("database work panicked")));
                    let _ = answer.send(outcome);
                }
            }
        });
        if self.jobs.send(job).is_err() {
            return Err(Error::internal("the database threads have ended"));
        }
        tokio::pin!(answered);
        let outcome = match tokio::time::timeout(wait, &mut answered).await {
            Ok(outcome) => outcome,
            Err(_) if take(&state, GIVEN_UP) => return Err(Error::Unavailable),
            // Taken in the meantime: its outcome is the answer.
            Err(_) => answered.await,
        };
        outcome.unwrap_or_else(|_| Err(Error::internal("database work was dropped")))
    }
}

/// Moves a waiting piece to `to`; false when a thread took it or its caller gave up
/// first.
fn take(state: &AtomicU8, to: u8) -> bool {
    state
        .compare_exchange(WAITING, to, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A piece that holds the one thread until `release` is sent.
    async fn hold(workers: &Arc<Workers>) -> (mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (release, held) = mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let w = workers.clone();
        let task = tokio::spawn(async move {
            let r = w
                .run(Duration::from_secs(10), move || {
                    let _ = started.send(());
                    let _ = held.recv();
                    Ok(())
                })
                .await;
            assert!(r.is_ok());
        });
        running.await.unwrap();
        (release, task)
    }

    #[tokio::test]
    async fn work_is_taken_in_the_order_it_arrived() {
        let workers = Arc::new(Workers::start(1).unwrap());
        let (release, first) = hold(&workers).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for n in 0..8 {
            let (w, order) = (workers.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                w.run(Duration::from_secs(10), move || {
                    order.lock().unwrap().push(n);
                    Ok(n)
                })
                .await
            }));
            // Each asks after the one before.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        release.send(()).unwrap();
        first.await.unwrap();
        for (n, w) in waiting.into_iter().enumerate() {
            assert_eq!(w.await.unwrap().unwrap(), n);
        }
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn work_whose_turn_does_not_come_in_time_is_unavailable_and_never_runs() {
        let workers = Arc::new(Workers::start(1).unwrap());
        let (release, first) = hold(&workers).await;
        let ran = Arc::new(AtomicBool::new(false));
        let r = workers
            .run(Duration::from_millis(50), {
                let ran = ran.clone();
                move || {
                    ran.store(true, Ordering::SeqCst);
                    Ok(())
                }
            })
            .await;
        assert!(matches!(r, Err(Error::Unavailable)), "{r:?}");
        release.send(()).unwrap();
        first.await.unwrap();
        // The thread has gone past the piece given up: one asked after it has run.
        let after = workers.run(Duration::from_secs(10), || Ok(7)).await;
        assert_eq!(after.unwrap(), 7);
        assert!(!ran.load(Ordering::SeqCst), "work given up was run");
    }

    #[tokio::test]
    async fn work_taken_in_time_answers_its_outcome_however_long_it_takes() {
        let workers = Workers::start(1).unwrap();
        let r = workers
            .run(Duration::from_millis(20), || {
                std::thread::sleep(Duration::from_millis(200));
                Ok("done")
            })
            .await;
        assert_eq!(r.unwrap(), "done");
    }

    #[tokio::test]
    async fn a_panic_is_an_internal_error_and_the_thread_goes_on() {
        let workers = Workers::start(1).unwrap();
        let r: Result<()> = workers
            .run(Duration::from_secs(10), || panic!("a bug"))
            .await;
        assert!(matches!(r, Err(Error::Internal(_))), "{r:?}");
        let next = workers.run(Duration::from_secs(10), || Ok(1)).await;
        assert_eq!(next.unwrap(), 1);
    }

    #[tokio::test]
    async fn every_thread_takes_work() {
        let workers = Arc::new(Workers::start(3).unwrap());
        // Three pieces that each wait for the other two: they finish only if three
        // threads run them at once.
        let barrier = Arc::new(std::sync::Barrier::new(3));
        let mut all = Vec::new();
        for _ in 0..3 {
            let (w, b) = (workers.clone(), barrier.clone());
            all.push(tokio::spawn(async move {
                w.run(Duration::from_secs(10), move || {
                    b.wait();
                    Ok(std::thread::current().name().map(String::from))
                })
                .await
            }));
        }
        // A thread that kept the queue while running its piece would leave the others
        // waiting, and this one on the barrier for ever: fail rather than hang.
        let mut names = tokio::time::timeout(Duration::from_secs(20), async {
            let mut names = Vec::new();
            for a in all {
                names.push(a.await.unwrap().unwrap().unwrap());
            }
            names
        })
        .await
        .expect("the three pieces ran at once");
        names.sort();
        assert_eq!(names, ["otpgate-db-0", "otpgate-db-1", "otpgate-db-2"]);
    }
}
