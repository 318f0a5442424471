//! Waiting for what the gateway does in the background (deliveries, the outbox).

use std::future::Future;
use std::time::{Duration, Instant};

/// Asks `probe` every 20 ms until it answers Ok, and returns that; past `within`, fails
/// the test with the last answer's reason.
pub async fn eventually<T, F, Fut>(within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        let why = match probe().await {
            Ok(done) => return done,
            Err(why) => why,
        };
        assert!(Instant::now() < deadline, "{why}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
