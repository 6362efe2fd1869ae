//! `run --pty`: the child on a pseudo-terminal. When our stdin is a terminal, it is in raw
//! mode while the child runs (every key goes to the child, whose line discipline echoes and
//! edits), and our window size follows the child's: at start and on each SIGWINCH.

use std::io;
use std::rc::Rc;
use std::time::Duration;

use torsion_process::{Process as PtyProcess, ProcessBuilderExt};
use torsion_pty::termios::{self, RawModeGuard};
use torsion_reactor::Reactor;
use torsion_transport::{
    ProcessBuilder, ProcessProtocol, ProcessTransport, PtyOptions, Signal, SpawnError,
};

/// How long a child has to exit after SIGTERM before its terminal is hung up.
const HANG_UP_GRACE: Duration = Duration::from_secs(1);

/// `--rows`/`--cols`: the PTY's initial size; our terminal's size (or 24×80) otherwise.
#[derive(Debug, Default, Clone, Copy)]
pub struct Size {
    pub rows: Option<u16>,
    pub cols: Option<u16>,
}

/// Spawn `builder` on a PTY of the chosen size.
pub fn spawn(
    reactor: &Reactor,
    builder: ProcessBuilder,
    size: Size,
    protocol: Box<dyn ProcessProtocol>,
) -> Result<Rc<PtyProcess>, SpawnError> {
    let ours = termios::terminal_size(io::stdin()).unwrap_or((24, 80));
    let options = PtyOptions::size(size.rows.unwrap_or(ours.0), size.cols.unwrap_or(ours.1));
    builder.pty(options).spawn(reactor, protocol)
}

/// If our stdin is a terminal: raw mode until the guard is dropped, and SIGWINCH forwarded
/// to the child as `resize`.
pub fn attach(reactor: &Reactor, pty: &Rc<PtyProcess>) -> io::Result<Option<RawModeGuard>> {
    let stdin = io::stdin();
    if !termios::is_terminal(&stdin) {
        return Ok(None);
    }
    let p = pty.clone();
    reactor.on_signal(Signal::Winch, move || {
        if let Ok((rows, cols)) = termios::terminal_size(io::stdin()) {
            let _ = p.resize(rows, cols);
        }
    })?;
    RawModeGuard::enter(&stdin).map(Some)
}

/// SIGTERM: forward it; if the child is still there after a grace period (an interactive
/// shell ignores SIGTERM), hang its terminal up, as closing a terminal window does.
pub fn on_sigterm(reactor: &Reactor, pty: &Rc<PtyProcess>) -> io::Result<()> {
    let (p, r) = (pty.clone(), reactor.clone());
    reactor.on_signal(Signal::Term, move || {
        let _ = p.signal_process(Signal::Term);
        let p = p.clone();
        r.call_later(HANG_UP_GRACE, move || p.lose_connection());
    })?;
    Ok(())
}
