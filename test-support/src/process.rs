//! Child processes run to completion (`ronctl`, `ron-ledger certs`): what they said and how they
//! exited, in the shape the tests compare.

use std::process::Output;

/// Exit code (-1 when killed by a signal), stdout and stderr (lossy UTF-8).
pub fn outcome(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
