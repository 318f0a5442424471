//! The recent sends to one destination, as its send-limit row keeps them: the times
//! (milliseconds) written as decimal numbers joined by commas, with the longest window
//! and the highest limit of the policies that have counted them.
//!
//! The row is locked while an issue counts them, so reading the times, counting, and
//! writing them back with the new send is one step that no other issue interleaves
//! with. A limit of `max` sends per `window` needs at most the last `max` sends of the
//! last `window`; the row keeps that for every policy that has counted it, and no more.
//! A policy counting a destination for the first time sees what the policies before it
//! needed: a longer window than theirs finds its older sends gone.

use std::fmt::Write;

use crate::db::limits::Kept;

/// The send times of one destination, oldest first, and what the row keeps of them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecentSends {
    times: Vec<i64>,
    /// The longest window of the policies that have counted them.
    window_ms: i64,
    /// The highest number of sends per window of those policies.
    max: i64,
}

impl RecentSends {
    /// The times as the row keeps them. Entries that are not times (a row changed by
    /// hand) are skipped: they count as no send.
    pub fn parse(stored: &str, window_ms: i64, max: i64) -> RecentSends {
        let mut times: Vec<i64> = stored
            .split(',')
            .filter_map(|t| t.trim().parse().ok())
            .collect();
        times.sort_unstable();
        RecentSends {
            times,
            window_ms,
            max,
        }
    }

    /// With `max` sends per `window_ms` allowed, whether one more may go at `now`:
    /// None when it may, else the milliseconds until it may (when enough sends have
    /// left the window that fewer than `max` remain in it).
    pub fn wait_ms(&self, now: i64, max: i64, window_ms: i64) -> Option<i64> {
        let since = now - window_ms;
        let inside = &self.times[self.times.partition_point(|t| *t <= since)..];
        let max = usize::try_from(max.max(1)).unwrap_or(usize::MAX);
        let over = inside.len().checked_sub(max)?;
        // All but the `max - 1` most recent must leave the window; the youngest of
        // them leaves last.
        Some(inside[over] + window_ms - now)
    }

    /// The row after a send at `now`, counted under a policy of `max` sends per
    /// `window_ms`: the sends that this policy or one before it may still count.
    pub fn with_send(&self, now: i64, max: i64, window_ms: i64) -> Kept {
        let window_ms = self.window_ms.max(window_ms);
        let max = self.max.max(max).max(1);
        let since = now - window_ms;
        let at = self.times.partition_point(|t| *t <= now);
        let times = self.times[..at]
            .iter()
            .chain([&now])
            .chain(&self.times[at..]);
        let inside: Vec<&i64> = times.filter(|t| **t > since).collect();
        let from = inside
            .len()
            .saturating_sub(usize::try_from(max).unwrap_or(usize::MAX));
        let mut text = String::with_capacity(14 * (inside.len() - from));
        for (i, t) in inside[from..].iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            let _ = write!(text, "{comma}{t}");
        }
        Kept {
            times: text,
            window_ms,
            max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn sends(times: &[i64]) -> RecentSends {
        RecentSends {
            times: times.to_vec(),
            ..RecentSends::default()
        }
    }

    #[test]
    fn an_empty_row_holds_no_sends() {
        let empty = RecentSends::parse("", 0, 0);
        assert_eq!(empty, RecentSends::default());
        assert_eq!(empty.wait_ms(1000, 1, MIN), None);
        let kept = empty.with_send(1000, 5, MIN);
        assert_eq!(
            kept,
            Kept {
                times: "1000".into(),
                window_ms: MIN,
                max: 5
            }
        );
    }

    #[test]
    fn the_times_are_written_oldest_first_and_read_back() {
        let stored = RecentSends::parse("3000,1000", 0, 0);
        assert_eq!(stored.times, [1000, 3000]);
        let kept = stored.with_send(2000, 5, MIN);
        assert_eq!(kept.times, "1000,2000,3000");
        let again = RecentSends::parse(&kept.times, kept.window_ms, kept.max);
        assert_eq!(again.times, [1000, 2000, 3000]);
        // What is not a time counts as no send.
        assert_eq!(RecentSends::parse("x,5,,-", 0, 0).times, [5]);
    }

    #[test]
    fn the_limit_counts_only_sends_inside_the_window() {
        let now = 100 * MIN;
        // Sends 20, 10 and 5 minutes ago.
        let s = sends(&[now - 20 * MIN, now - 10 * MIN, now - 5 * MIN]);
        assert_eq!(s.wait_ms(now, 3, 15 * MIN), None);
        // Per 30 minutes, the third is the limit; the oldest leaves in 10 minutes.
        assert_eq!(s.wait_ms(now, 3, 30 * MIN), Some(10 * MIN));
        // A send exactly a window ago has left it.
        assert_eq!(s.wait_ms(now, 3, 20 * MIN), None);
    }

    #[test]
    fn over_the_limit_the_wait_lasts_until_fewer_than_max_remain() {
        let now = 100 * MIN;
        // Four sends inside the window (a policy allowed more before), now 2 allowed:
        // the three oldest must leave, the last of them in 7 minutes.
        let s = sends(&[now - 9 * MIN, now - 4 * MIN, now - 3 * MIN, now - MIN]);
        assert_eq!(s.wait_ms(now, 2, 10 * MIN), Some(7 * MIN));
        assert_eq!(s.wait_ms(now, 4, 10 * MIN), Some(MIN));
        assert_eq!(s.wait_ms(now, 5, 10 * MIN), None);
    }

    #[test]
    fn the_row_keeps_what_its_policies_count_and_no_more() {
        let now = 1000 * MIN;
        let old = [now - 30 * MIN, now - 20 * MIN, now - 10 * MIN, now - MIN];
        // 2 per 15 minutes: the last two sends of the last 15 minutes.
        let kept = sends(&old).with_send(now, 2, 15 * MIN);
        assert_eq!(kept.times, format!("{},{now}", now - MIN));
        // A row counted before by a policy of 3 per hour keeps what that one needs.
        let counted = RecentSends {
            window_ms: 60 * MIN,
            max: 3,
            ..sends(&old)
        };
        let kept = counted.with_send(now, 2, 15 * MIN);
        assert_eq!((kept.window_ms, kept.max), (60 * MIN, 3));
        let times = RecentSends::parse(&kept.times, kept.window_ms, kept.max).times;
        assert_eq!(times, [now - 10 * MIN, now - MIN, now]);
        // Which is what that policy then finds: 3 in the hour, the wait until the
        // oldest of the three leaves.
        let later = now + MIN;
        let reread = RecentSends::parse(&kept.times, kept.window_ms, kept.max);
        assert_eq!(reread.wait_ms(later, 3, 60 * MIN), Some(49 * MIN));
        // A limit far above any count keeps the whole window.
        let many: Vec<i64> = (0..100).map(|i| now - 100 + i).collect();
        let kept = sends(&many).with_send(now, 1_000_000_000, MIN);
        assert_eq!(kept.times.split(',').count(), 101);
    }

    #[test]
    fn the_kept_sends_answer_as_all_of_them_would() {
        // 50 sends a minute apart; a policy of 5 per 30 minutes keeps its 5 and
        // answers the same wait as the whole list, before and after.
        let now = 100 * MIN;
        let all: Vec<i64> = (0..50).map(|i| now - 50 * MIN + i * MIN).collect();
        let kept = sends(&all).with_send(now, 5, 30 * MIN);
        let kept = RecentSends::parse(&kept.times, kept.window_ms, kept.max);
        let mut whole = all.clone();
        whole.push(now);
        for at in [
            now,
            now + 10 * MIN,
            now + 27 * MIN,
            now + 29 * MIN,
            now + 31 * MIN,
        ] {
            assert_eq!(
                kept.wait_ms(at, 5, 30 * MIN),
                sends(&whole).wait_ms(at, 5, 30 * MIN),
                "at {at}"
            );
        }
    }
}
