//! Console control events standing in for POSIX signals (CONTRACT B7 on Windows).
//!
//! Windows has no signals. What a console program gets instead are *control events*,
//! delivered by calling a handler registered with `SetConsoleCtrlHandler` **on a new thread
//! the system creates**. torsion maps them onto the two signals a reactor stops on:
//!
//! | event                                                       | delivered as |
//! |-------------------------------------------------------------|--------------|
//! | `CTRL_C_EVENT`, `CTRL_BREAK_EVENT`                           | `SIGINT`     |
//! | `CTRL_CLOSE_EVENT`, `CTRL_LOGOFF_EVENT`, `CTRL_SHUTDOWN_EVENT` | `SIGTERM`    |
//!
//! Any other [`Signal`] is refused with `ErrorKind::Unsupported`.
//!
//! As on Unix, the handler does no work itself: it records the event in every *slot*
//! (one per reactor watching signals) interested in it and wakes that reactor; the callbacks
//! run in the loop. The handler returns `TRUE` (handled) only if some reactor watches the
//! event, so a program whose reactors watch nothing still dies on Ctrl+C as users expect.
//!
//! # Portability
//!
//! For `CTRL_CLOSE_EVENT`, `CTRL_LOGOFF_EVENT` and `CTRL_SHUTDOWN_EVENT` Windows ends the
//! process soon after the handler returns, whatever it returns: the loop may not get to
//! finish a graceful shutdown. Wine 8 does not implement `GenerateConsoleCtrlEvent`, so the
//! tests call the handler directly.
//!
//! # Implementation notes
//!
//! Each slot wakes its reactor through a connected loopback TCP pair, the Windows
//! self-pipe (Twisted's `_SocketWaker`, Python's `socketpair` on Windows): the handler
//! writes a byte to one end; the other end is registered with the reactor's poller under
//! `SIGNAL_TOKEN` and drained by the loop. mio allows a single `Waker` per poller (the
//! reactor's own, for `call_from_thread`), so a second one is not an option.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use mio::{Interest, Registry, Token};
use torsion_transport::Signal;
use windows_sys::Win32::System::Console::{
    CTRL_BREAK_EVENT, CTRL_C_EVENT, CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT,
    SetConsoleCtrlHandler,
};
use windows_sys::core::BOOL;

/// The numbers torsion uses for the two signals it maps (the C runtime's, which match
/// [`Signal::as_raw`] on Windows).
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// The number `signal` is watched under on Windows.
///
/// # Errors
///
/// `Unsupported` for anything but [`Signal::Int`] and [`Signal::Term`].
pub(crate) fn signal_number(signal: Signal) -> io::Result<i32> {
    match signal {
        Signal::Int => Ok(SIGINT),
        Signal::Term => Ok(SIGTERM),
        other => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{other} cannot be watched on Windows: only SIGINT (Ctrl+C, Ctrl+Break) and \
                 SIGTERM (console close, logoff, shutdown) map to console control events"
            ),
        )),
    }
}

fn signal_of_event(event: u32) -> Option<i32> {
    match event {
        CTRL_C_EVENT | CTRL_BREAK_EVENT => Some(SIGINT),
        CTRL_CLOSE_EVENT | CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT => Some(SIGTERM),
        _ => None,
    }
}

#[derive(Default)]
struct SlotState {
    in_use: bool,
    /// The write end of the slot's socket pair; `None` until registered.
    waker: Option<TcpStream>,
    watched: Vec<i32>,
    arrived: Vec<i32>,
}

/// Every slot, indexed by [`Slot::index`]. The handler runs on a thread of its own, so a
/// mutex is fine here (unlike a POSIX signal handler).
static SLOTS: Mutex<Vec<SlotState>> = Mutex::new(Vec::new());
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Serialises the one `SetConsoleCtrlHandler` call.
static INSTALL_LOCK: Mutex<()> = Mutex::new(());

fn slots() -> std::sync::MutexGuard<'static, Vec<SlotState>> {
    SLOTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// One reactor's slot: where the handler records events for it.
#[derive(Debug)]
pub(crate) struct Slot {
    index: usize,
    /// The read end of the socket pair, registered with the reactor's poller.
    wake_reader: RefCell<Option<mio::net::TcpStream>>,
}

impl Slot {
    /// Take a free slot and clear what it held.
    pub(crate) fn acquire() -> io::Result<Slot> {
        let mut all = slots();
        let index = match all.iter().position(|s| !s.in_use) {
            Some(i) => i,
            None => {
                all.push(SlotState::default());
                all.len() - 1
            }
        };
        all[index] = SlotState {
            in_use: true,
            ..SlotState::default()
        };
        Ok(Slot {
            index,
            wake_reader: RefCell::new(None),
        })
    }

    /// Create the slot's socket pair and register its read end with `registry` under
    /// `token`.
    pub(crate) fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let writer = TcpStream::connect(listener.local_addr()?)?;
        let (reader, _) = listener.accept()?;
        writer.set_nonblocking(true)?;
        writer.set_nodelay(true)?;
        reader.set_nonblocking(true)?;
        let mut reader = mio::net::TcpStream::from_std(reader);
        registry.register(&mut reader, token, Interest::READABLE)?;
        *self.wake_reader.borrow_mut() = Some(reader);
        if let Some(s) = slots().get_mut(self.index) {
            s.waker = Some(writer);
        }
        Ok(())
    }

    /// Deregister and close the socket pair: nothing wakes the reactor any more.
    pub(crate) fn deregister(&self, registry: &Registry) {
        if let Some(s) = slots().get_mut(self.index) {
            s.waker = None;
        }
        if let Some(mut reader) = self.wake_reader.borrow_mut().take() {
            if let Err(e) = registry.deregister(&mut reader) {
                log::warn!("deregistering the console-event socket: {e}");
            }
        }
    }

    /// Start delivering `signum` to this slot, installing the console handler if needed.
    pub(crate) fn watch(&self, signum: i32) -> io::Result<()> {
        install()?;
        if let Some(s) = slots().get_mut(self.index) {
            if !s.watched.contains(&signum) {
                s.watched.push(signum);
            }
        }
        Ok(())
    }

    /// Stop delivering `signum` to this slot.
    pub(crate) fn unwatch(&self, signum: i32) {
        if let Some(s) = slots().get_mut(self.index) {
            s.watched.retain(|&n| n != signum);
        }
    }

    /// The signal numbers that arrived since the last call, in arrival order, with
    /// duplicates collapsed.
    pub(crate) fn take_arrived(&self) -> Vec<i32> {
        // Drain to `WouldBlock`: mio on Windows reports readiness again only after that.
        if let Some(reader) = self.wake_reader.borrow().as_ref() {
            let mut buf = [0u8; 64];
            let mut r = reader;
            loop {
                match r.read(&mut buf) {
                    Ok(n) if n > 0 => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    _ => break,
                }
            }
        }
        slots()
            .get_mut(self.index)
            .map(|s| std::mem::take(&mut s.arrived))
            .unwrap_or_default()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(s) = slots().get_mut(self.index) {
            *s = SlotState::default();
        }
    }
}

fn install() -> io::Result<()> {
    let _guard = INSTALL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if INSTALLED.load(Ordering::SeqCst) {
        return Ok(());
    }
    // SAFETY: `handler` has the `PHANDLER_ROUTINE` signature and lives for the whole
    // program; adding a handler has no other precondition.
    if unsafe { SetConsoleCtrlHandler(Some(handler), 1) } == 0 {
        return Err(io::Error::last_os_error());
    }
    INSTALLED.store(true, Ordering::SeqCst);
    Ok(())
}

/// Record `event` for every interested slot and wake its reactor. Returns whether any
/// slot was interested (the handler's "handled").
fn deliver(event: u32) -> bool {
    let Some(signum) = signal_of_event(event) else {
        return false;
    };
    let mut handled = false;
    for s in slots().iter_mut() {
        if s.in_use && s.watched.contains(&signum) {
            handled = true;
            if !s.arrived.contains(&signum) {
                s.arrived.push(signum);
            }
            if let Some(mut w) = s.waker.as_ref() {
                // A full socket buffer (`WouldBlock`) is fine: a wake-up is pending.
                if let Err(e) = w.write(&[1]) {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        log::warn!("waking a reactor for a console event failed: {e}");
                    }
                }
            }
        }
    }
    handled
}

/// The console control handler, run by Windows on a thread it creates for the event.
unsafe extern "system" fn handler(event: u32) -> BOOL {
    BOOL::from(deliver(event))
}

/// Windows has no SIGPIPE: a write to a closed pipe is an error already.
pub(crate) fn ignore_sigpipe_if_default() {}

/// POSIX's inherited `SIG_IGN` has no console-event counterpart the reactor could read
/// back: Windows never reports a signal as inherited-ignored.
pub(crate) fn inherited_as_ignored(_signal: Signal) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    use crate::Reactor;

    #[test]
    fn only_int_and_term_can_be_watched() {
        assert_eq!(signal_number(Signal::Int).unwrap(), SIGINT);
        assert_eq!(signal_number(Signal::Term).unwrap(), SIGTERM);
        let e = signal_number(Signal::Hup).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        assert!(e.to_string().contains("SIGHUP"), "{e}");
    }

    /// Wine 8 has no `GenerateConsoleCtrlEvent`: call the handler as Windows would, from
    /// another thread, and check the callback runs in the loop.
    #[test]
    fn b7_console_events_reach_the_loop_as_int_and_term() {
        let r = Reactor::new().unwrap();
        let ints = Rc::new(Cell::new(0));
        let terms = Rc::new(Cell::new(0));
        let (i, t) = (ints.clone(), terms.clone());
        let a = r
            .on_signal(Signal::Int, move || i.set(i.get() + 1))
            .unwrap();
        let _b = r
            .on_signal(Signal::Term, move || t.set(t.get() + 1))
            .unwrap();
        let e = r.on_signal(Signal::Usr1, || ()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);

        let from_windows = std::thread::spawn(|| {
            // SAFETY: calling our own handler with a valid event code, as Windows would.
            let handled = unsafe { handler(CTRL_BREAK_EVENT) };
            // SAFETY: as above.
            let handled_close = unsafe { handler(CTRL_CLOSE_EVENT) };
            (handled, handled_close)
        });
        assert_eq!(from_windows.join().unwrap(), (1, 1));
        r.run_until(
            || ints.get() == 1 && terms.get() == 1,
            Duration::from_secs(10),
        )
        .unwrap();

        // Unwatched: not handled, so Windows' default handler would end the process.
        r.remove_signal_handler(a);
        assert!(!deliver(CTRL_C_EVENT) || slots().iter().any(|s| s.watched.contains(&SIGINT)));
        assert!(!deliver(42));
    }
}
