//! The checks of `[record]`.

use crate::config::RecordSettings;

pub(super) fn check(r: &RecordSettings, problems: &mut Vec<String>) {
    if r.dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
        problems.push("record.dir: empty; leave it out to turn recording off".into());
    }
    if !r.sample.is_finite() || !(0.0..=1.0).contains(&r.sample) {
        problems.push(format!("record.sample: {} is outside 0.0 to 1.0", r.sample));
    }
    if !(1..=1_000_000).contains(&r.queue) {
        problems.push("record.queue: must be between 1 and 1000000".into());
    }
    if !(1..=86_400).contains(&r.pending_seconds) {
        problems.push("record.pending_seconds: must be between 1 and 86400".into());
    }
    for (key, list) in [("names", &r.names), ("redact", &r.redact)] {
        if list.iter().any(|n| n.trim().is_empty()) {
            problems.push(format!("record.{key}: an empty name"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_record_settings_are_named() {
        let mut problems = Vec::new();
        check(&RecordSettings::default(), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let bad = RecordSettings {
            dir: Some("".into()),
            names: vec![" ".into()],
            sample: 1.5,
            redact: vec![String::new()],
            queue: 0,
            pending_seconds: 0,
        };
        check(&bad, &mut problems);
        for expected in [
            "record.dir: empty",
            "record.sample: 1.5 is outside",
            "record.queue:",
            "record.pending_seconds:",
            "record.names: an empty name",
            "record.redact: an empty name",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "missing {expected}: {problems:?}"
            );
        }
        let nan = RecordSettings {
            sample: f64::NAN,
            ..Default::default()
        };
        let mut problems = Vec::new();
        check(&nan, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    /// The recording page's example is a configuration that starts, with recording on.
    #[test]
    fn the_documented_recording_example_is_valid() {
        let page = include_str!("../../../docs/recording.md");
        let blocks: Vec<&str> = page
            .split("```toml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .collect();
        assert_eq!(blocks.len(), 1, "docs/recording.md's toml blocks");
        let s = crate::config::load::load_text(blocks[0]).unwrap_or_else(|e| panic!("{e}"));
        assert!(s.record.enabled());
        assert_eq!(s.record.sample, 0.25);
        assert_eq!(s.record.names.len(), 4);
    }
}
