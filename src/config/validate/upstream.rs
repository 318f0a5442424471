//! `[upstream.*]`: URLs, limits and routes that can work.

use crate::config::{RouteTo, UnknownTokens, Upstream, UpstreamSettings};

pub(super) fn check(s: &UpstreamSettings, problems: &mut Vec<String>) {
    for (section, up) in [
        ("summit", &s.summit),
        ("twofactor", &s.twofactor),
        ("capillary", &s.capillary),
    ] {
        check_one(section, up, problems);
        if section != "summit"
            && (up.service_api_key.is_some() || up.unknown_tokens != UnknownTokens::Forward)
        {
            problems.push(format!(
                "upstream.{section}: service_api_key and unknown_tokens belong to upstream.summit"
            ));
        }
    }
}

fn check_one(section: &str, up: &Upstream, problems: &mut Vec<String>) {
    if let Err(e) = crate::upstream::Forwarder::new(section, up) {
        problems.push(e);
    }
    if up.connect_timeout_ms == 0 || up.timeout_ms == 0 {
        problems.push(format!(
            "upstream.{section}: connect_timeout_ms and timeout_ms must be positive"
        ));
    }
    if up.max_in_flight == 0 {
        problems.push(format!(
            "upstream.{section}.max_in_flight: must be at least 1"
        ));
    }
    if up.max_answer_bytes < 1024 {
        problems.push(format!(
            "upstream.{section}.max_answer_bytes: must be at least 1024"
        ));
    }
    if up.breaker_failures == 0 || up.breaker_pause_ms == 0 {
        problems.push(format!(
            "upstream.{section}: breaker_failures and breaker_pause_ms must be positive"
        ));
    }
    if up.url.is_none() {
        for (key, to) in &up.routes {
            if *to == RouteTo::Upstream {
                problems.push(format!(
                    "upstream.{section}.routes: '{key}' is routed upstream, but upstream.{section} has no url"
                ));
            }
        }
    }
}
