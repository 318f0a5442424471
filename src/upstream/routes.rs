//! Which names a dialect answers itself, forwards or refuses: the `routes` table of
//! its `[upstream.*]` section over the default (what otpgate serves is local, the rest
//! goes upstream when there is one).

use std::collections::HashMap;

pub use crate::config::RouteTo;

#[derive(Debug, Default)]
pub struct Routes {
    /// Keys in lower case.
    table: HashMap<String, RouteTo>,
}

impl Routes {
    pub fn new<'a>(table: impl IntoIterator<Item = (&'a String, &'a RouteTo)>) -> Routes {
        Routes {
            table: table
                .into_iter()
                .map(|(k, v)| (k.trim().trim_matches('/').to_ascii_lowercase(), *v))
                .collect(),
        }
    }

    /// Where a request goes. `names` are its keys, most specific first
    /// (`LoginApp:FORM`, then `LoginApp`); `served` says whether otpgate serves it,
    /// `forwarding` whether an upstream is configured.
    pub fn decide(&self, names: &[&str], served: bool, forwarding: bool) -> RouteTo {
        let chosen = names
            .iter()
            .find_map(|n| self.table.get(&n.trim().to_ascii_lowercase()).copied());
        match chosen {
            Some(RouteTo::Upstream) if forwarding => RouteTo::Upstream,
            // Checked at start-up; never forwarded without a server to go to.
            Some(RouteTo::Upstream) => RouteTo::Local,
            Some(other) => other,
            None if !served && forwarding => RouteTo::Upstream,
            None => RouteTo::Local,
        }
    }

    /// The keys, as written in lower case.
    pub fn keys(&self) -> impl Iterator<Item = (&str, RouteTo)> {
        self.table.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

/// The name a path suffix stands for, as the upstream will read it: percent-decoded,
/// empty segments dropped (`/user//g%65t/` is `user/get`).
pub fn name_of(suffix: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(suffix).decode_utf8_lossy();
    decoded
        .split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn routes(pairs: &[(&str, RouteTo)]) -> Routes {
        let m: BTreeMap<String, RouteTo> = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        Routes::new(&m)
    }

    #[test]
    fn names_are_read_as_the_upstream_reads_them() {
        assert_eq!(name_of("/user//g%65t/"), "user/get");
        assert_eq!(name_of("/Delete%55ser"), "DeleteUser");
        let r = routes(&[("/user/get/", RouteTo::Refuse)]);
        assert_eq!(
            r.decide(&[&name_of("/User/Get")], false, true),
            RouteTo::Refuse
        );
    }

    #[test]
    fn served_names_are_local_and_the_rest_goes_upstream() {
        let r = routes(&[]);
        assert_eq!(r.decide(&["LoginApp"], true, true), RouteTo::Local);
        assert_eq!(r.decide(&["IM_X"], false, true), RouteTo::Upstream);
        assert_eq!(r.decide(&["IM_X"], false, false), RouteTo::Local);
    }

    #[test]
    fn the_most_specific_key_wins_without_case() {
        let r = routes(&[
            ("LoginApp:FORM", RouteTo::Upstream),
            ("loginapp", RouteTo::Local),
            ("IM_Secret", RouteTo::Refuse),
        ]);
        assert_eq!(
            r.decide(&["LOGINAPP:form", "LOGINAPP"], true, true),
            RouteTo::Upstream
        );
        assert_eq!(
            r.decide(&["LoginApp:OTP", "LoginApp"], true, true),
            RouteTo::Local
        );
        assert_eq!(r.decide(&["im_secret"], false, true), RouteTo::Refuse);
        assert_eq!(r.decide(&["im_secret"], false, false), RouteTo::Refuse);
    }
}
