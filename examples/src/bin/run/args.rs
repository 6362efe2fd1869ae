//! `run`'s command line (clap derive): `run --help` prints it all.

use std::ffi::OsString;

use clap::Parser;

use crate::terminal;

/// Run a program with its stdio relayed through the torsion reactor, on pipes or a PTY.
///
/// Exits with the program's exit code, 128 + the signal that killed it, 124 after
/// --timeout, 127 if the program cannot be found and 126 if it cannot be run. SIGINT and
/// SIGTERM are forwarded to the program.
#[derive(Debug, Parser)]
#[command(name = "run", version)]
pub struct Args {
    /// Send the program SIGTERM after SECONDS (SIGKILL two seconds later) and exit 124.
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    pub timeout: Option<f64>,

    /// Run the program on a pseudo-terminal; a terminal stdin is put in raw mode.
    #[arg(long)]
    pub pty: bool,

    /// Rows of the PTY [default: our terminal's, else 24].
    #[arg(long, requires = "pty", value_parser = clap::value_parser!(u16).range(1..))]
    pub rows: Option<u16>,

    /// Columns of the PTY [default: our terminal's, else 80].
    #[arg(long, requires = "pty", value_parser = clap::value_parser!(u16).range(1..))]
    pub cols: Option<u16>,

    /// The program to run and its arguments; everything from the program on is its own
    /// (`--` before a program whose name starts with `-`).
    #[arg(value_name = "PROGRAM", required = true, trailing_var_arg = true)]
    pub command: Vec<OsString>,
}

impl Args {
    /// `--pty` with the size asked for, if any.
    pub fn pty_size(&self) -> Option<terminal::Size> {
        self.pty.then_some(terminal::Size {
            rows: self.rows,
            cols: self.cols,
        })
    }
}

/// A non-negative number of seconds that fits a timer.
fn parse_timeout(s: &str) -> Result<f64, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    torsion_transport::time::delay_from_secs(secs).map_err(|e| e.to_string())?;
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
    }

    #[test]
    fn options_then_the_program_with_or_without_a_double_dash() {
        let a = parse(&["--timeout", "1.5", "--pty", "--rows", "5", "--", "ls", "-l"]).unwrap();
        assert_eq!(a.timeout, Some(1.5));
        let size = a.pty_size().unwrap();
        assert_eq!((size.rows, size.cols), (Some(5), None));
        assert_eq!(a.command, ["ls", "-l"]);
        let a = parse(&["sh", "-c", "echo --pty"]).unwrap();
        assert!(a.pty_size().is_none());
        assert_eq!(a.command, ["sh", "-c", "echo --pty"]);
    }

    #[test]
    fn bad_usage_is_an_error() {
        for bad in [
            &["--bogus", "--", "true"][..],
            &["--rows", "3", "--", "true"],
            &["--pty", "--rows", "0", "--", "true"],
            &["--timeout", "-1", "--", "true"],
            &["--timeout", "soon", "--", "true"],
            &[],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
