//! The tools the command line starts: `otpgate replay` and `otpgate bench`.

use super::args::ReplayArgs;
use crate::config::Settings;
use crate::tools::bench::{self, BenchArgs};
use crate::tools::replay;

pub(super) fn run_bench(args: BenchArgs, settings: Settings) -> Result<(), String> {
    bench::run(args, settings).map(|_| ())
}

pub(super) fn run_replay(a: ReplayArgs) -> Result<(), String> {
    let files = replay::collect(&a.fixtures)?;
    if files.is_empty() {
        return Err("no *.replay.toml scenarios among the paths given".into());
    }
    let replayer = replay::Replayer::new(&a.target, a.sink)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let (passed, failed) = runtime.block_on(replay::replay_all(
        &replayer,
        &files,
        a.record,
        &mut std::io::stdout(),
    ))?;
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        Ok(())
    } else if a.record {
        Err(format!("{failed} scenarios differed and were recorded"))
    } else {
        Err(format!("{failed} scenarios did not match"))
    }
}
