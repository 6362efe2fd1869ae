//! The machine section of the report.

use std::process::Command;

/// What the report says about where it ran.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// Logical CPUs.
    pub cores: usize,
    /// `uname -sr`.
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
    /// Total memory from /proc/meminfo.
    pub memory: String,
    /// Python and Twisted versions, or why Twisted was skipped.
    pub twisted: String,
    /// The 1-minute load average when the run started (`/proc/loadavg`), if known: above
    /// about half the core count, other work shared the machine and wall-clock figures are
    /// noisy.
    pub load: Option<f64>,
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Machine {
    /// Collect everything but the Twisted line.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let kernel = command_line("uname", &["-sr"]).unwrap_or_else(|| "unknown".to_owned());
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
        let rustc = command_line(&rustc, &["--version"]).unwrap_or_else(|| "unknown".to_owned());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown".to_owned());
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next()?.parse().ok());
        Machine {
            load,
            cpu,
            cores,
            kernel,
            rustc,
            memory,
            twisted: String::new(),
        }
    }
}

impl Machine {
    /// The cores row: the count, and whether the machine was loaded when the run started.
    pub fn cores_text(&self) -> String {
        match self.load {
            Some(l) if l > self.cores as f64 / 2.0 => format!(
                "{} (**loaded**: load average {l:.2} at the start, other work was running; \
                 wall-clock figures are noisy)",
                self.cores
            ),
            Some(l) => format!("{} (quiet: load average {l:.2} at the start)", self.cores),
            None => format!("{} (load unknown)", self.cores),
        }
    }
}
