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
    if up.max_answer_bytes < 1024 || up.max_request_bytes < 1024 {
        problems.push(format!(
            "upstream.{section}: max_answer_bytes and max_request_bytes must be at least 1024"
        ));
    }
    if up.breaker_failures == 0 || up.breaker_pause_ms == 0 {
        problems.push(format!(
            "upstream.{section}: breaker_failures and breaker_pause_ms must be positive"
        ));
    }
    const DAY_MS: u64 = 86_400_000;
    if [up.connect_timeout_ms, up.timeout_ms, up.breaker_pause_ms]
        .iter()
        .any(|ms| *ms > DAY_MS)
    {
        problems.push(format!(
            "upstream.{section}: connect_timeout_ms, timeout_ms and breaker_pause_ms must be at most a day (86400000)"
        ));
    }
    if up.url.is_some() && up.base_url.is_some() {
        problems.push(format!(
            "upstream.{section}: give url or base_url, not both"
        ));
    }
    if up.address().is_none() {
        for (key, to) in &up.routes {
            if *to == RouteTo::Upstream {
                problems.push(format!(
                    "upstream.{section}.routes: '{key}' is routed upstream, but upstream.{section} has no url or base_url"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load::load_text;

    /// The gateway page's examples are configurations that start.
    #[test]
    fn the_documented_gateway_examples_are_valid() {
        let page = include_str!("../../../docs/gateway.md");
        let blocks: Vec<&str> = page
            .split("```toml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .collect();
        assert!(!blocks.is_empty());
        for b in blocks {
            // The CA file of the example does not exist here.
            let b = b.replace("ca_file = \"/etc/otpgate/private-root.pem\"", "");
            let s = load_text(&b).unwrap_or_else(|e| panic!("{e}\n{b}"));
            assert!(s.upstream.summit.url.is_some());
            crate::dialects::check_routes(&s.upstream).unwrap();
        }
    }

    #[test]
    fn unusable_upstreams_are_named() {
        let e = load_text(
            r#"
[upstream.summit]
url = "ftp://legacy/x"
max_in_flight = 0
[upstream.twofactor]
base_url = "http://legacy/api/TwoFactor"
ca_file = "/nonexistent/ca.pem"
service_api_key = "k"
[upstream.capillary.routes]
"otp/generate" = "upstream"
"#,
        )
        .unwrap_err();
        for expected in [
            "upstream.summit.url: 'ftp://legacy/x' must be an http or https URL",
            "upstream.summit.max_in_flight: must be at least 1",
            "upstream.twofactor.ca_file: cannot read /nonexistent/ca.pem",
            "upstream.twofactor: service_api_key and unknown_tokens belong to upstream.summit",
            "upstream.capillary.routes: 'otp/generate' is routed upstream, but upstream.capillary has no url or base_url",
        ] {
            assert!(e.contains(expected), "missing: {expected}\nin:\n{e}");
        }
    }

    #[test]
    fn a_pem_bundle_is_accepted_as_ca_file() {
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls/ca.pem");
        let s = load_text(&format!(
            "[upstream.summit]\nurl = \"https://legacy.example/x\"\nca_file = \"{ca}\"\n"
        ));
        assert!(s.is_ok(), "{s:?}");
    }
}
