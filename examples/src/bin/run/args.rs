//! `run`'s command line.

use std::ffi::OsString;

use crate::terminal;

pub const USAGE: &str =
    "usage: run [--timeout SECONDS] [--pty [--rows R] [--cols C]] -- PROGRAM [ARGS...]";

/// `--timeout`, `--pty` with its size, and the argv after `--`.
pub type Parsed = (Option<f64>, Option<terminal::Size>, Vec<OsString>);

/// Parse the arguments after the program name.
pub fn parse(args: &[OsString]) -> Result<Parsed, String> {
    let (mut timeout, mut pty) = (None, None::<terminal::Size>);
    let mut i = 0;
    while i < args.len() && args[i] != "--" {
        let opt = args[i].to_str().unwrap_or_default();
        if opt == "--pty" {
            pty.get_or_insert_with(Default::default);
            i += 1;
            continue;
        }
        if !matches!(opt, "--timeout" | "--rows" | "--cols") {
            return Err(format!("unknown option {:?}", args[i]));
        }
        let v = args
            .get(i + 1)
            .and_then(|v| v.to_str())
            .ok_or(format!("{opt} needs a value"))?;
        if opt == "--timeout" {
            let secs: f64 = v.parse().map_err(|_| format!("bad --timeout {v:?}"))?;
            torsion_transport::time::delay_from_secs(secs)
                .map_err(|e| format!("--timeout: {e}"))?;
            timeout = Some(secs);
        } else {
            let n = v.parse::<u16>().ok().filter(|n| *n > 0);
            let n = n.ok_or(format!("bad {opt} {v:?}"))?;
            let size = pty.as_mut().ok_or(format!("{opt} needs --pty before it"))?;
            *(if opt == "--rows" {
                &mut size.rows
            } else {
                &mut size.cols
            }) = Some(n);
        }
        i += 2;
    }
    let program = args.get(i + 1..).unwrap_or_default().to_vec();
    if program.is_empty() {
        return Err("no program given".into());
    }
    Ok((timeout, pty, program))
}
