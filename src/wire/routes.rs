//! Routes as the dialects and the gateway declare them: a method, the path the OpenAPI
//! document lists, and how a request path is matched against it.

/// How a request path is matched against a route's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// The path itself.
    Exact,
    /// Any path under the route's path up to its `{…}` parameter.
    Prefix,
    /// Any path that ends with the route's path, without case and with or without a
    /// final `/`: legacy clients reach the dialects under various prefixes.
    Suffix,
}

/// One route the gateway serves.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// The path as the OpenAPI document lists it.
    pub path: &'static str,
    pub matching: Match,
}

impl Route {
    pub const fn post_suffix(path: &'static str) -> Route {
        Route {
            method: "POST",
            path,
            matching: Match::Suffix,
        }
    }

    /// POST routes matched by suffix, one per path.
    pub const fn post_suffixes<const N: usize>(paths: [&'static str; N]) -> [Route; N] {
        let mut routes = [Route::post_suffix(""); N];
        let mut i = 0;
        while i < N {
            routes[i] = Route::post_suffix(paths[i]);
            i += 1;
        }
        routes
    }

    pub fn matches(&self, path: &str) -> bool {
        match self.matching {
            Match::Exact => path == self.path,
            Match::Prefix => {
                let prefix = self.path.split('{').next().unwrap_or(self.path);
                path.len() > prefix.len() && path.starts_with(prefix)
            }
            Match::Suffix => {
                // Compared as bytes, without case and without allocating: every request
                // is matched against every route.
                let (p, s) = (path.trim_end_matches('/').as_bytes(), self.path.as_bytes());
                p.len() >= s.len() && p[p.len() - s.len()..].eq_ignore_ascii_case(s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_routes_match_after_any_prefix_without_case() {
        let r = Route::post_suffix("/api/TwoFactor/CreateTwoFactorSmsOtp");
        assert!(r.matches("/cs/API/twofactor/createtwofactorsmsotp/"));
        assert!(!r.matches("/api/TwoFactor/CreateTwoFactorSmsOtpX"));
        assert!(!r.matches("/TwoFactor/CreateTwoFactorSmsOtp"));
        assert!(r.matches("/api/TwoFactor/CreateTwoFactorSmsOtp//"));
        assert!(r.matches("/é/api/twofactor/createtwofactorsmsotp"));
        let schema = Route {
            method: "GET",
            path: "/schemas/{path}",
            matching: Match::Prefix,
        };
        assert!(schema.matches("/schemas/summit/envelope.xsd"));
        assert!(!schema.matches("/schemas/"));
    }
}
