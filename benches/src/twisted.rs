//! The Twisted contenders: a virtual environment under `target/bench-venv` with
//! `pip install twisted`, and the scripts in `benches/python/`, each of which prints one
//! `RESULT key=value ...` line that [`parse_result`] reads.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{python_dir, work_dir};

/// A Python interpreter that can `import twisted`.
#[derive(Debug, Clone)]
pub struct Twisted {
    python: PathBuf,
    /// `Python 3.x.y, Twisted z`.
    pub version: String,
}

fn run_quiet(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
        Err(format!(
            "{:?} failed ({}): {last}",
            cmd.get_program(),
            out.status
        ))
    }
}

impl Twisted {
    /// Find or create the venv and install Twisted in it.
    ///
    /// # Errors
    ///
    /// Why Twisted cannot be used (no `python3`, no `venv` module, `pip` failed); the
    /// report prints it and skips the Twisted column.
    pub fn setup() -> Result<Twisted, String> {
        if std::env::var_os("TORSION_BENCH_NO_TWISTED").is_some() {
            return Err("TORSION_BENCH_NO_TWISTED is set".to_owned());
        }
        let venv = work_dir().join("bench-venv");
        let python = venv.join("bin").join("python");
        let probe = |python: &Path| {
            run_quiet(Command::new(python).args([
                "-c",
                "import sys, twisted; print('Python %d.%d.%d, Twisted %s' % (sys.version_info[:3] + (twisted.__version__,)))",
            ]))
        };
        if let Ok(version) = probe(&python) {
            return Ok(Twisted { python, version });
        }
        eprintln!("creating {} and installing Twisted ...", venv.display());
        run_quiet(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        run_quiet(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "twisted",
        ]))?;
        let version = probe(&python)?;
        Ok(Twisted { python, version })
    }

    /// Run `script` with `args` and return its `RESULT` fields.
    ///
    /// # Errors
    ///
    /// The script failed, timed out, or printed no `RESULT` line.
    pub fn run(
        &self,
        script: &str,
        args: &[String],
        timeout: Duration,
    ) -> Result<HashMap<String, f64>, String> {
        let mut child = self.spawn(script, args, Stdio::null())?;
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{script} timed out after {timeout:?}"));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(format!("waiting for {script}: {e}")),
            }
        }
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        if let Some(mut s) = child.stderr.take() {
            let _ = s.read_to_string(&mut err);
        }
        parse_result(&out).ok_or_else(|| {
            let last = err.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
            format!("{script} printed no RESULT line: {last}")
        })
    }

    /// Start `script` and return the child with piped stdout/stderr.
    ///
    /// # Errors
    ///
    /// The interpreter could not be started.
    pub fn spawn(&self, script: &str, args: &[String], stdin: Stdio) -> Result<Child, String> {
        Command::new(&self.python)
            .arg(python_dir().join(script))
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {script}: {e}"))
    }

    /// Start a server script and wait for the `PORT n` line it prints once listening.
    ///
    /// # Errors
    ///
    /// The script exited or printed something else.
    pub fn start_server(&self, script: &str, args: &[String]) -> Result<(Child, u16), String> {
        let mut child = self.spawn(script, args, Stdio::null())?;
        let Some(stdout) = child.stdout.take() else {
            return Err("no stdout".to_owned());
        };
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        let read = reader.read_line(&mut line);
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse::<u16>().ok());
        match (read, port) {
            (Ok(_), Some(port)) => Ok((child, port)),
            _ => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut s) = child.stderr.take() {
                    let _ = s.read_to_string(&mut err);
                }
                let _ = child.wait();
                Err(format!("{script} did not report a port: {line:?} {err}"))
            }
        }
    }
}

/// The fields of the first `RESULT k=v k=v` line in `out`.
pub fn parse_result(out: &str) -> Option<HashMap<String, f64>> {
    let line = out.lines().find_map(|l| l.strip_prefix("RESULT "))?;
    Some(
        line.split_whitespace()
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect(),
    )
}

/// The field `key` of a parsed result.
///
/// # Errors
///
/// The field is missing.
pub fn field(result: &HashMap<String, f64>, key: &str) -> Result<f64, String> {
    result
        .get(key)
        .copied()
        .ok_or_else(|| format!("RESULT line has no {key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_result_lines() {
        let r = parse_result("noise\nRESULT ns_per_timer=123.5 n=10\n").unwrap();
        assert_eq!(r["ns_per_timer"], 123.5);
        assert_eq!(r["n"], 10.0);
        assert!(parse_result("nothing").is_none());
    }
}
