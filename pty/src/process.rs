//! The PTY process transport: a child on a pseudo-terminal driving a [`ProcessProtocol`]
//! (CONTRACT F, J, L).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::{Rc, Weak};

use torsion_process::raw::{self, ResourceUsage};
use torsion_process::{ExitInfo, ProtocolCell};
use torsion_reactor::catch_panic;
use torsion_transport::{
    Consumer, ExitReason, ProcessError, ProcessProtocol, ProcessTransport, Producer, ProducerError,
    PushProducer, Reason, Signal,
};

use crate::master::{MasterOwner, PtyMaster};
use crate::termios::{self, ControlChar, Termios, When};

/// The child fd a PTY's output is reported on (CONTRACT L3).
const OUTPUT_FD: i32 = 1;

const ONE_CHANNEL_WRITE: &str = "a PTY has one channel: write to it as fd 0 \
     (write_to_child(0, ..) or write); the child's output arrives as fd 1";
const ONE_CHANNEL_CLOSE: &str = "a PTY has one channel: it cannot close one child fd; \
     close_stdin sends the terminal's EOF character, lose_connection closes the terminal";

/// A child running on a pseudo-terminal, as the parent sees it (Twisted's `PTYProcess`).
///
/// Made by [`spawn`](crate::spawn); given to the protocol as `Rc<dyn ProcessTransport>`
/// in `connection_made`. The protocol is dropped after `process_ended` returns, which
/// breaks the transport ↔ protocol cycle.
///
/// # One channel
///
/// The child's stdin, stdout and stderr are all the terminal. The parent holds its
/// master end, one fd that is read and written:
///
/// - Everything the child writes, stdout and stderr alike, arrives as
///   `child_data_received(1, ..)`, after the line discipline's echo and `\n` → `\r\n`
///   translation (CONTRACT L3). When the master closes, the protocol gets one
///   `child_connection_lost(1)` (CONTRACT F2 for the one channel).
/// - [`write`](Consumer::write), `write_to_child(0, ..)` and a registered producer write
///   to the terminal, as keys typed by a user, buffered with flow control (CONTRACT D).
/// - `write_to_child` to any other fd, `close_child_fd`, `close_stdout` and
///   `close_stderr` are errors ([`ProcessError::Unsupported`]), not silent no-ops
///   (CONTRACT L7).
///
/// # `close_stdin`: the terminal's EOF key
///
/// A terminal cannot close "stdin" alone. [`close_stdin`](ProcessTransport::close_stdin)
/// does what a user does at the keyboard, and what `script(1)` does when its own input
/// ends: it writes the terminal's `VEOF` character (normally `^D`) after the data already
/// written. It first sends one extra `VEOF` if the last byte written did not end a line,
/// so the pending partial line is handed to the child and the second `VEOF` falls at the
/// start of a line. A child reading in canonical mode (the default; `cat`, `sh`, `read`)
/// then reads end-of-file; a child that put the terminal in raw mode just receives the
/// byte(s). The terminal stays open: output goes on, and every call sends another EOF, as
/// another `^D` would. After the master is closed it does nothing.
///
/// # End of output and the end of the process
///
/// `process_exited` comes when the child is reaped (CONTRACT F3). The master is read
/// until the kernel says every slave fd is closed — `EIO` on Linux, end-of-file on the
/// BSDs (CONTRACT L4) — *not* closed when the child exits, so everything the child wrote
/// before exiting is delivered. The master is then closed once the child is also reaped
/// (closing it earlier would hang up the terminal of a child that closed its fds but has not
/// exited yet, killing it with `SIGHUP`), and `child_connection_lost(1)` follows.
/// `process_ended` comes once the child is reaped **and** the master is closed (CONTRACT
/// L5). A background grandchild that keeps the terminal open
/// holds `process_ended` back until it exits or [`lose_connection`](Self::lose_connection)
/// is called.
///
/// # Closing
///
/// `lose_connection` stops reading, flushes what was written, and closes the master: the
/// kernel hangs the terminal up and the child's session gets `SIGHUP` (CONTRACT L6).
/// Input the child had not read yet is discarded by the hang-up, as on any terminal.
/// It never sends a signal itself; a child that ignores `SIGHUP` keeps running.
pub struct PtyProcess {
    pid: Cell<Option<u32>>,
    original_pid: u32,
    pidfd: RefCell<Option<Rc<OwnedFd>>>,
    protocol: ProtocolCell,
    master: RefCell<Option<Rc<PtyMaster>>>,
    exit: Cell<Option<ExitInfo>>,
    master_closed: Cell<bool>,
    ended: Cell<bool>,
    paused: Cell<bool>,
    /// True if the last byte written ended a line (or nothing was written yet).
    at_line_start: Cell<bool>,
    me: Weak<PtyProcess>,
}

impl fmt::Debug for PtyProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PtyProcess")
            .field("pid", &self.original_pid)
            .field("alive", &self.pid.get().is_some())
            .field("master_closed", &self.master_closed.get())
            .field("exit", &self.exit.get())
            .finish()
    }
}

impl PtyProcess {
    pub(crate) fn new(
        pid: u32,
        pidfd: Option<Rc<OwnedFd>>,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Rc<PtyProcess> {
        Rc::new_cyclic(|me| PtyProcess {
            pid: Cell::new(Some(pid)),
            original_pid: pid,
            pidfd: RefCell::new(pidfd),
            protocol: ProtocolCell::new(protocol),
            master: RefCell::new(None),
            exit: Cell::new(None),
            master_closed: Cell::new(false),
            ended: Cell::new(false),
            paused: Cell::new(false),
            at_line_start: Cell::new(true),
            me: me.clone(),
        })
    }

    pub(crate) fn owner(&self) -> Option<Rc<dyn MasterOwner>> {
        self.me.upgrade().map(|p| p as Rc<dyn MasterOwner>)
    }

    pub(crate) fn set_master(&self, master: Rc<PtyMaster>) {
        *self.master.borrow_mut() = Some(master);
    }

    /// Call `connection_made` and start reading (CONTRACT F1).
    pub(crate) fn start(self: &Rc<Self>) {
        let t: Rc<dyn ProcessTransport> = self.clone();
        self.deliver(move |p| p.connection_made(t));
        if let Some(m) = self.master() {
            if !self.paused.get() && !m.file_descriptor().disconnecting() {
                m.file_descriptor().start_reading();
            }
        }
    }

    fn master(&self) -> Option<Rc<PtyMaster>> {
        self.master.borrow().clone()
    }

    /// The pid this child had, even after it was reaped.
    pub fn original_pid(&self) -> u32 {
        self.original_pid
    }

    /// Why the child ended, once it was reaped.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.exit.get().map(|e| e.reason)
    }

    /// The raw wait status, once reaped (if it could be learned).
    pub fn wait_status(&self) -> Option<i32> {
        self.exit.get().and_then(|e| e.status)
    }

    /// CPU times and peak memory of the child, from `wait4`, once reaped.
    pub fn resource_usage(&self) -> Option<ResourceUsage> {
        self.exit.get().and_then(|e| e.rusage)
    }

    /// True once `process_ended` was delivered.
    pub fn ended(&self) -> bool {
        self.ended.get()
    }

    /// True once the master is closed (end of output, `lose_connection`, or shutdown).
    pub fn master_closed(&self) -> bool {
        self.master_closed.get()
    }

    /// Bytes written to the terminal but not yet accepted by the kernel.
    pub fn unsent(&self) -> usize {
        self.master().map_or(0, |m| m.file_descriptor().unsent())
    }

    /// Set the write buffer size over which a registered streaming producer is paused
    /// (default 64 KiB, CONTRACT D4).
    pub fn set_buffer_size(&self, bytes: usize) {
        if let Some(m) = self.master() {
            m.file_descriptor().set_buffer_size(bytes);
        }
    }

    fn with_master_fd<R>(&self, f: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> R) -> io::Result<R> {
        self.master()
            .and_then(|m| m.with_fd(f))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the PTY master is closed"))
    }

    /// Change the terminal's window size (`TIOCSWINSZ` on the master); the child's
    /// foreground process group gets `SIGWINCH` when the size changes (CONTRACT L2).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero side; `NotConnected` once the master is closed; the OS
    /// error of the `ioctl`.
    ///
    /// # References
    ///
    /// [`ioctl_tty(2)`](https://man7.org/linux/man-pages/man2/ioctl_tty.2.html) `TIOCSWINSZ`.
    pub fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        if rows == 0 || cols == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("window size {rows}x{cols} has a zero side"),
            ));
        }
        log::debug!("process {}: resize to {rows}x{cols}", self.original_pid);
        self.with_master_fd(|fd| raw::set_window_size(fd, rows, cols))?
    }

    /// The terminal's window size `(rows, cols)`.
    ///
    /// # Errors
    ///
    /// `NotConnected` once the master is closed; the OS error of the `ioctl`.
    pub fn window_size(&self) -> io::Result<(u16, u16)> {
        self.with_master_fd(raw::window_size)?
    }

    /// The terminal's attributes (as the child's line discipline uses them).
    ///
    /// # Errors
    ///
    /// `NotConnected` once the master is closed; the OS error of `tcgetattr`.
    pub fn termios(&self) -> io::Result<Termios> {
        self.with_master_fd(|fd| termios::get_attributes(fd))?
    }

    /// Set the terminal's attributes, taking effect as `when` says.
    ///
    /// # Errors
    ///
    /// `NotConnected` once the master is closed; the OS error of `tcsetattr`.
    pub fn set_termios(&self, when: When, attributes: &Termios) -> io::Result<()> {
        self.with_master_fd(|fd| termios::set_attributes(fd, when, attributes))?
    }

    /// Turn the terminal's echo of what the parent writes on or off.
    ///
    /// # Errors
    ///
    /// As [`set_termios`](Self::set_termios).
    pub fn set_echo(&self, on: bool) -> io::Result<()> {
        self.with_master_fd(|fd| termios::set_echo(fd, on))?
    }

    fn deliver(&self, f: impl FnOnce(&mut dyn ProcessProtocol) + 'static) {
        self.protocol.deliver(f);
    }

    pub(crate) fn reaped(&self, info: ExitInfo) {
        self.pid.set(None);
        self.pidfd.borrow_mut().take();
        self.exit.set(Some(info));
        let reason = info.reason;
        // CONTRACT F7: a panic in process_exited is logged; process_ended still comes.
        self.deliver(move |p| {
            catch_panic("process_exited", || p.process_exited(reason));
        });
        // The output had ended already: the terminal can be closed now (see end_of_output).
        if let Some(m) = self.master().filter(|m| m.at_eof()) {
            m.close();
        }
        self.maybe_ended();
    }

    /// CONTRACT L5: ended once the child is reaped and the master is closed.
    fn maybe_ended(&self) {
        let Some(info) = self.exit.get() else { return };
        if self.ended.get() || !self.master_closed.get() {
            return;
        }
        self.ended.set(true);
        let reason = info.reason;
        log::debug!("PTY process {} ended: {reason}", self.original_pid);
        self.deliver(move |p| {
            catch_panic("process_ended", || p.process_ended(reason));
        });
        // Break the transport <-> protocol cycle (the protocol may hold us).
        self.protocol.release();
    }

    fn note_written(&self, data: &[u8]) {
        if let Some(&last) = data.last() {
            self.at_line_start.set(last == b'\n' || last == b'\r');
        }
    }
}

impl MasterOwner for PtyProcess {
    fn data_received(&self, data: &[u8]) {
        self.protocol.child_data_received(OUTPUT_FD, data);
    }

    /// The output ended (every slave fd is closed). The master is closed once the child is
    /// reaped: closing it while the child still runs (a child that closed its terminal fds
    /// and has not exited yet) would hang its terminal up and kill it with SIGHUP.
    fn end_of_output(&self) {
        if self.exit.get().is_some() {
            if let Some(m) = self.master() {
                m.close();
            }
        }
    }

    fn master_lost(&self, reason: Reason) {
        log::debug!(
            "PTY process {}: terminal closed: {reason}",
            self.original_pid
        );
        self.master_closed.set(true);
        self.deliver(move |p| p.child_connection_lost(OUTPUT_FD));
        self.maybe_ended();
    }
}

impl Consumer for PtyProcess {
    /// Write to the terminal, as typed keys (CONTRACT I5); dropped once the master is
    /// closed (CONTRACT D1).
    fn write(&self, data: &[u8]) {
        if let Some(m) = self.master() {
            self.note_written(data);
            m.file_descriptor().write(data);
        }
    }

    fn write_sequence(&self, data: &[&[u8]]) {
        if let Some(m) = self.master() {
            if let Some(last) = data.iter().rev().find(|c| !c.is_empty()) {
                self.note_written(last);
            }
            m.file_descriptor().write_sequence(data);
        }
    }

    /// Register with the master's write side (CONTRACT E1); on a closed master the
    /// producer is stopped.
    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        match self.master() {
            Some(m) => m.file_descriptor().register_producer(producer),
            None => {
                producer.stop_producing();
                Ok(())
            }
        }
    }

    fn unregister_producer(&self) {
        if let Some(m) = self.master() {
            m.file_descriptor().unregister_producer();
        }
    }
}

impl PushProducer for PtyProcess {
    /// Stop reading the terminal; the child blocks once the terminal's buffer is full
    /// (CONTRACT I6). `process_exited` may still arrive; `process_ended` waits.
    fn pause_producing(&self) {
        self.paused.set(true);
        if let Some(m) = self.master() {
            m.file_descriptor().pause_producing();
        }
    }

    /// Start reading again; output buffered meanwhile is delivered (CONTRACT I6).
    fn resume_producing(&self) {
        self.paused.set(false);
        if let Some(m) = self.master() {
            m.file_descriptor().resume_producing();
        }
    }

    fn stop_producing(&self) {
        ProcessTransport::lose_connection(self);
    }
}

impl ProcessTransport for PtyProcess {
    fn pid(&self) -> Option<u32> {
        self.pid.get()
    }

    /// Fd 0 writes to the terminal; any other fd is
    /// [`ProcessError::Unsupported`] (CONTRACT L7).
    fn write_to_child(&self, fd: i32, data: &[u8]) -> Result<(), ProcessError> {
        if fd != 0 {
            return Err(ProcessError::Unsupported(ONE_CHANNEL_WRITE));
        }
        self.write(data);
        Ok(())
    }

    /// Always [`ProcessError::Unsupported`]: a PTY has one channel (CONTRACT L7).
    fn close_child_fd(&self, _fd: i32) -> Result<(), ProcessError> {
        Err(ProcessError::Unsupported(ONE_CHANNEL_CLOSE))
    }

    /// Send the terminal's EOF character (see [the type's docs](PtyProcess#close_stdin-the-terminals-eof-key)).
    ///
    /// # Errors
    ///
    /// [`ProcessError::Unsupported`] if the terminal's `VEOF` is disabled;
    /// [`ProcessError::Os`] if its attributes cannot be read.
    fn close_stdin(&self) -> Result<(), ProcessError> {
        let Some(attributes) = self
            .master()
            .and_then(|m| m.with_fd(|fd| termios::get_attributes(fd)))
        else {
            return Ok(()); // the master is closed: nothing to end
        };
        let attributes = attributes.map_err(ProcessError::Os)?;
        let Some(eof) = attributes.control_char(ControlChar::Eof) else {
            return Err(ProcessError::Unsupported(
                "the terminal's EOF character (VEOF) is disabled, so close_stdin cannot \
                 signal end-of-file; use lose_connection to close the terminal",
            ));
        };
        if self.at_line_start.get() {
            self.write(&[eof]);
        } else {
            self.write(&[eof, eof]);
        }
        self.at_line_start.set(true);
        Ok(())
    }

    fn signal_process(&self, signal: Signal) -> Result<(), ProcessError> {
        let Some(pid) = self.pid.get() else {
            return Err(ProcessError::ExitedAlready);
        };
        let pidfd = self.pidfd.borrow().clone();
        match raw::send_signal(pid, pidfd.as_ref().map(|f| f.as_fd()), signal) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Err(ProcessError::ExitedAlready),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                Err(ProcessError::UnsupportedSignal(signal))
            }
            Err(e) => Err(ProcessError::Os(e)),
        }
    }

    /// CONTRACT L6: stop reading, flush, close the master (the child gets `SIGHUP`).
    fn lose_connection(&self) {
        if let Some(m) = self.master() {
            m.file_descriptor().lose_connection();
        }
    }
}
