//! `run --pty`: the child on a pseudo-terminal. When our stdin is a terminal, it is in raw
//! mode while the child runs (every key goes to the child, whose line discipline echoes and
//! edits), and our window size follows the child's: at start and on each SIGWINCH.

use std::io;
use std::rc::Rc;
use std::time::Duration;

use torsion_process::Process as PtyProcess;
use torsion_pty::termios::{self, RawModeGuard};
use torsion_reactor::Reactor;
use torsion_transport::{ProcessBuilder, ProcessTransport, PtyOptions, Signal};

/// How long a child has to exit after SIGTERM before its terminal is hung up.
const HANG_UP_GRACE: Duration = Duration::from_secs(1);

/// The size of a terminal that reports none (or a zero side): VT100's.
const FALLBACK: (u16, u16) = (24, 80);

/// `--rows`/`--cols`: the PTY's initial size; our terminal's size (or 24×80) otherwise.
#[derive(Debug, Default, Clone, Copy)]
pub struct Size {
    pub rows: Option<u16>,
    pub cols: Option<u16>,
}

/// The PTY's `(rows, cols)`: what was asked for, else what our terminal reports, else
/// 24×80 — per side, so a terminal that reports 0 rows or 0 cols (a serial console, a
/// container's pseudo-terminal before its first resize) gets 24 or 80 there.
pub fn choose_size(asked: Size, ours: Option<(u16, u16)>) -> (u16, u16) {
    let (our_rows, our_cols) = ours.unwrap_or(FALLBACK);
    let pick = |asked: Option<u16>, ours: u16, fallback: u16| {
        asked
            .filter(|n| *n > 0)
            .or(Some(ours).filter(|n| *n > 0))
            .unwrap_or(fallback)
    };
    (
        pick(asked.rows, our_rows, FALLBACK.0),
        pick(asked.cols, our_cols, FALLBACK.1),
    )
}

/// Our terminal's size as the PTY's: [`choose_size`] with nothing asked for.
fn our_size() -> (u16, u16) {
    choose_size(Size::default(), termios::terminal_size(io::stdin()).ok())
}

/// `builder` on a PTY of the chosen size.
pub fn on_pty(builder: ProcessBuilder, size: Size) -> ProcessBuilder {
    let ours = termios::terminal_size(io::stdin()).ok();
    let (rows, cols) = choose_size(size, ours);
    builder.pty(PtyOptions::size(rows, cols))
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
        let (rows, cols) = our_size();
        let _ = p.resize(rows, cols);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_reporting_zero_rows_or_cols_gets_24_by_80_there() {
        let none = Size::default();
        assert_eq!(choose_size(none, Some((0, 0))), (24, 80));
        assert_eq!(choose_size(none, Some((0, 132))), (24, 132));
        assert_eq!(choose_size(none, Some((50, 0))), (50, 80));
        assert_eq!(choose_size(none, None), (24, 80), "not a terminal");
        assert_eq!(choose_size(none, Some((40, 120))), (40, 120));
    }

    #[test]
    fn asked_sizes_win_per_side() {
        let rows = Size {
            rows: Some(5),
            cols: None,
        };
        assert_eq!(choose_size(rows, Some((0, 0))), (5, 80));
        assert_eq!(choose_size(rows, Some((40, 120))), (5, 120));
        let both = Size {
            rows: Some(5),
            cols: Some(7),
        };
        assert_eq!(choose_size(both, None), (5, 7));
    }
}
