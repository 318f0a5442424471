//! otpgate in front of a legacy server: forwarding what it does not serve, byte for
//! byte; routing overrides; exchanging its sessions for upstream credentials; and
//! every way the upstream can fail.

use otpgate::config::{RouteTo, Settings};

use crate::support::legacy::LegacyServer;
use crate::support::*;

mod failures;
mod forwarding;
mod sessions;

/// Where the fake legacy server's Summit endpoint is.
const LEGACY_PATH: &str = "/SummitAI/REST/Summit_RESTWCF.svc/RESTService/CommonWS_JsonObjCall";

/// A gateway in front of `legacy` for all three dialects, as `tweak` changes it.
async fn fronting(b: Backend, legacy: &LegacyServer, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let base = legacy.base.clone();
    spawn_with(b, move |s| {
        s.upstream.summit.url = Some(format!("{base}{LEGACY_PATH}"));
        s.upstream.twofactor.base_url = Some(format!("{base}/legacy/api/TwoFactor"));
        s.upstream.capillary.base_url = Some(format!("{base}/legacy/auth/v1"));
        tweak(s)
    })
    .await
}

fn route(s: &mut Settings, name: &str, to: RouteTo) {
    s.upstream.summit.routes.insert(name.into(), to);
}

/// An envelope for a ServiceName otpgate does not serve.
fn incident(extra: &str) -> String {
    format!(
        r#"{{"ServiceName":"IM_LogOrUpdateIncident", "objCommonParameters":{{"_ProxyDetails":{{"AuthType":"APIKEY","APIKey":"client-key","ProxyID":0,"ReturnType":"JSON","OrgID":"1"{extra}}},"objIncident":{{"Description":"Printer \u00e9 on fire","Priority":  3}}}}}}"#
    )
}
