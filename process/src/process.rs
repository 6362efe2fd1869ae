//! The process transport: a child's channels — pipes, or a pseudo-terminal — and its exit,
//! driving a [`ProcessProtocol`] (CONTRACT F, I, J, L).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::rc::{Rc, Weak};

use torsion_pty::termios::{self, ControlChar, Termios, When};
use torsion_pty::{MasterOwner, PtyMaster};
use torsion_transport::{
    ChildFd, Consumer, ExitReason, ProcessError, ProcessProtocol, ProcessTransport, Producer,
    ProducerError, PushProducer, Reason, SharedBytes, Signal,
};

use crate::core::ExitInfo;
use crate::core::ProcessCore;
use crate::pipes::{PipeOwner, ProcessReader, ProcessWriter};
use crate::raw::ResourceUsage;

/// The child fd a PTY's output is reported on (CONTRACT L3).
const PTY_OUTPUT_FD: i32 = 1;

const ONE_CHANNEL_WRITE: &str = "a PTY has one channel: write to it as fd 0 \
     (write_to_child(0, ..) or write); the child's output arrives as fd 1";
const ONE_CHANNEL_CLOSE: &str = "a PTY has one channel: it cannot close one child fd; \
     close_stdin sends the terminal's EOF character, lose_connection closes the terminal";
const NOT_A_PTY: &str = "this child runs on pipes, not on a pseudo-terminal";

/// A running (or finished) child, as the parent sees it: Twisted's `Process` and
/// `PTYProcess` in one type, whatever the builder asked for.
///
/// Made by `builder.spawn(&reactor, protocol)` ([`ProcessBuilderExt`](crate::ProcessBuilderExt));
/// given to the protocol as `Rc<dyn ProcessTransport>` in `connection_made`. The protocol
/// is dropped after `process_ended` returns, which breaks the transport ↔ protocol cycle.
///
/// `process_exited` means the child is gone; `process_ended` means that *and* every channel
/// the reactor created for it is closed, so no more output can arrive. They differ when
/// a grandchild inherited the pipes, or when the child closed its stdout early.
///
/// # On pipes
///
/// Each child fd mapped [`ChildFd::Read`] is a pipe the parent reads, reported as
/// `child_data_received(fd, ..)`; each mapped [`ChildFd::Write`] a pipe the parent writes,
/// with [`write_to_child`](ProcessTransport::write_to_child) (fd 0 also through
/// [`write`](Consumer::write) and a registered producer, CONTRACT I5).
///
/// # On a pseudo-terminal: one channel
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
/// `close_stdin` is the terminal's EOF key: it writes the terminal's `VEOF` character
/// (normally `^D`) after the data already written — first one extra if the last byte
/// written did not end a line, so the pending partial line is handed to the child and the
/// second `VEOF` falls at the start of a line. A child reading in canonical mode then reads
/// end-of-file; a child in raw mode just receives the byte(s). The terminal stays open.
///
/// The master is read until the kernel says every slave fd is closed — `EIO` on Linux,
/// end-of-file on the BSDs (CONTRACT L4) — and closed only once the child is also reaped
/// (closing it earlier would hang up a child that closed its terminal fds but has not
/// exited yet). `process_ended` comes once the child is reaped **and** the master is
/// closed (CONTRACT L5). `lose_connection` stops reading, flushes and closes the master:
/// the child's session gets `SIGHUP` (CONTRACT L6). It never sends a signal itself.
///
/// [`resize`](Self::resize), [`window_size`](Self::window_size),
/// [`termios`](Self::termios), [`set_termios`](Self::set_termios) and
/// [`set_echo`](Self::set_echo) act on the terminal; on a pipe child they are
/// `Unsupported` errors.
///
/// # Panics in the protocol
///
/// Every call into the protocol is caught (CONTRACT C5). A panic in `connection_made`
/// closes every channel (the child sees end-of-file and `EPIPE`); the exit and
/// `process_ended` still come, and the spawn still returns this handle. A panic in
/// `child_data_received` closes that channel (F7). A panic in `child_connection_lost` or
/// `process_exited` is logged; `process_ended` still comes.
pub struct Process {
    core: ProcessCore,
    io: Io,
    me: Weak<Process>,
}

enum Io {
    Pipes(Pipes),
    Pty(PtyIo),
}

struct Pipes {
    /// Open pipes the child writes. A child has a handful of pipes, so a `Vec` searched
    /// by child fd: a `BTreeMap` would allocate a whole B-tree node for two or three
    /// entries (B8).
    readers: RefCell<Vec<Rc<ProcessReader>>>,
    /// Open pipes the child reads, as `readers`.
    writers: RefCell<Vec<Rc<ProcessWriter>>>,
    /// Child fds mapped `ChildFd::Write` at spawn (closed ones included).
    writable: Box<[i32]>,
}

struct PtyIo {
    master: RefCell<Option<Rc<PtyMaster>>>,
    master_closed: Cell<bool>,
    /// True if the last byte written ended a line (or nothing was written yet).
    at_line_start: Cell<bool>,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Process");
        d.field("core", &self.core);
        match &self.io {
            Io::Pipes(p) => d
                .field(
                    "readers",
                    &p.readers
                        .borrow()
                        .iter()
                        .map(|r| r.child_fd())
                        .collect::<Vec<_>>(),
                )
                .field(
                    "writers",
                    &p.writers
                        .borrow()
                        .iter()
                        .map(|w| w.child_fd())
                        .collect::<Vec<_>>(),
                ),
            Io::Pty(t) => d.field("pty_master_closed", &t.master_closed.get()),
        };
        d.finish()
    }
}

impl Process {
    pub(crate) fn new_pipes(
        pid: u32,
        pidfd: Option<Rc<OwnedFd>>,
        protocol: Box<dyn ProcessProtocol>,
        fd_map: &BTreeMap<i32, ChildFd>,
    ) -> Rc<Process> {
        let count = |want: ChildFd| fd_map.values().filter(|d| **d == want).count();
        let (n_read, n_write) = (count(ChildFd::Read), count(ChildFd::Write));
        let p = Rc::new_cyclic(|me| Process {
            core: ProcessCore::new(pid, protocol),
            io: Io::Pipes(Pipes {
                readers: RefCell::new(Vec::with_capacity(n_read)),
                writers: RefCell::new(Vec::with_capacity(n_write)),
                writable: fd_map
                    .iter()
                    .filter(|(_, w)| **w == ChildFd::Write)
                    .map(|(k, _)| *k)
                    .collect(),
            }),
            me: me.clone(),
        });
        p.set_pidfd(pidfd);
        p
    }

    pub(crate) fn new_pty(
        pid: u32,
        pidfd: Option<Rc<OwnedFd>>,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Rc<Process> {
        let p = Rc::new_cyclic(|me| Process {
            core: ProcessCore::new(pid, protocol),
            io: Io::Pty(PtyIo {
                master: RefCell::new(None),
                master_closed: Cell::new(false),
                at_line_start: Cell::new(true),
            }),
            me: me.clone(),
        });
        p.set_pidfd(pidfd);
        p
    }

    fn set_pidfd(&self, pidfd: Option<Rc<OwnedFd>>) {
        self.core.set_pidfd(pidfd);
    }

    pub(crate) fn pipe_owner(&self) -> Option<Rc<dyn PipeOwner>> {
        self.me.upgrade().map(|p| p as Rc<dyn PipeOwner>)
    }

    pub(crate) fn master_owner(&self) -> Option<Rc<dyn MasterOwner>> {
        self.me.upgrade().map(|p| p as Rc<dyn MasterOwner>)
    }

    pub(crate) fn add_reader(&self, r: Rc<ProcessReader>) {
        if let Io::Pipes(p) = &self.io {
            let mut readers = p.readers.borrow_mut();
            readers.retain(|old| old.child_fd() != r.child_fd());
            readers.push(r);
        }
    }

    pub(crate) fn add_writer(&self, w: Rc<ProcessWriter>) {
        if let Io::Pipes(p) = &self.io {
            let mut writers = p.writers.borrow_mut();
            writers.retain(|old| old.child_fd() != w.child_fd());
            writers.push(w);
        }
    }

    pub(crate) fn set_master(&self, master: Rc<PtyMaster>) {
        if let Io::Pty(t) = &self.io {
            *t.master.borrow_mut() = Some(master);
        }
    }

    fn reader(&self, child_fd: i32) -> Option<Rc<ProcessReader>> {
        match &self.io {
            Io::Pipes(p) => p
                .readers
                .borrow()
                .iter()
                .find(|r| r.child_fd() == child_fd)
                .cloned(),
            Io::Pty(_) => None,
        }
    }

    fn writer(&self, child_fd: i32) -> Option<Rc<ProcessWriter>> {
        match &self.io {
            Io::Pipes(p) => p
                .writers
                .borrow()
                .iter()
                .find(|w| w.child_fd() == child_fd)
                .cloned(),
            Io::Pty(_) => None,
        }
    }

    fn readers(&self) -> Vec<Rc<ProcessReader>> {
        match &self.io {
            Io::Pipes(p) => p.readers.borrow().clone(),
            Io::Pty(_) => Vec::new(),
        }
    }

    fn master(&self) -> Option<Rc<PtyMaster>> {
        match &self.io {
            Io::Pty(t) => t.master.borrow().clone(),
            Io::Pipes(_) => None,
        }
    }

    /// True once no channel the reactor created is open.
    fn channels_closed(&self) -> bool {
        match &self.io {
            Io::Pipes(p) => p.readers.borrow().is_empty() && p.writers.borrow().is_empty(),
            Io::Pty(t) => t.master_closed.get(),
        }
    }

    /// Call `connection_made` and start reading (CONTRACT F1). A panic in
    /// `connection_made` closes every channel now (C5); the exit and the end still come.
    pub(crate) fn start(self: &Rc<Self>) {
        let t: Rc<dyn ProcessTransport> = self.clone();
        if !self.core.connection_made(t) {
            self.close_all_channels();
            return;
        }
        if self.core.paused() {
            return;
        }
        for r in self.readers() {
            r.start_reading();
        }
        if let Some(m) = self.master() {
            if !m.file_descriptor().disconnecting() {
                m.file_descriptor().start_reading();
            }
        }
    }

    /// Close every channel at once, dropping what was not written: the losses are reported
    /// from the loop.
    fn close_all_channels(&self) {
        for r in self.readers() {
            r.close();
        }
        if let Io::Pipes(p) = &self.io {
            let writers = p.writers.borrow().clone();
            for w in writers {
                w.file_descriptor().abort_connection();
            }
        }
        if let Some(m) = self.master() {
            m.file_descriptor().abort_connection();
        }
    }

    /// True if this child runs on a pseudo-terminal.
    pub fn is_pty(&self) -> bool {
        matches!(self.io, Io::Pty(_))
    }

    /// The pid this child had, even after it was reaped.
    pub fn original_pid(&self) -> u32 {
        self.core.original_pid()
    }

    /// Why the child ended, once it was reaped.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.core.exit_reason()
    }

    /// The raw wait status, once reaped (if it could be learned).
    pub fn wait_status(&self) -> Option<i32> {
        self.core.wait_status()
    }

    /// CPU times and peak memory of the child, from `wait4`, once reaped.
    pub fn resource_usage(&self) -> Option<ResourceUsage> {
        self.core.resource_usage()
    }

    /// True once `process_ended` was delivered.
    pub fn ended(&self) -> bool {
        self.core.ended()
    }

    /// The writer for child fd 0 of a pipe child, if there is one (for buffer size and
    /// state).
    pub fn stdin(&self) -> Option<Rc<ProcessWriter>> {
        self.writer(0)
    }

    /// [`write`](Consumer::write) of data handed over for good: queued without copying,
    /// and on Linux written to a stdin pipe with `vmsplice(2)`, so the pipe references the
    /// pages instead of copying them (CONTRACT D11). To a terminal, an ordinary write.
    /// Without a stdin it is dropped with a `warn!`, as `write` is.
    #[doc(alias = "vmsplice")]
    pub fn write_static(&self, data: &'static [u8]) {
        match &self.io {
            Io::Pipes(_) => match self.writer(0) {
                Some(w) => w.write_static(data),
                None => Consumer::write(self, data),
            },
            Io::Pty(_) => {
                if let Some(m) = self.master() {
                    self.note_written(data);
                    m.file_descriptor().write_static(data);
                }
            }
        }
    }

    /// True once a PTY child's master is closed (end of output, `lose_connection`, or
    /// shutdown); for a pipe child, once every pipe is closed.
    pub fn master_closed(&self) -> bool {
        self.channels_closed()
    }

    /// Bytes written to the child's stdin (or terminal) but not yet accepted by the kernel.
    pub fn unsent(&self) -> usize {
        match &self.io {
            Io::Pipes(_) => self.writer(0).map_or(0, |w| w.file_descriptor().unsent()),
            Io::Pty(_) => self.master().map_or(0, |m| m.file_descriptor().unsent()),
        }
    }

    /// Set the stdin (or terminal) write buffer size over which a registered streaming
    /// producer is paused (default 64 KiB, CONTRACT D4).
    pub fn set_buffer_size(&self, bytes: usize) {
        if let Some(w) = self.writer(0) {
            w.file_descriptor().set_buffer_size(bytes);
        }
        if let Some(m) = self.master() {
            m.file_descriptor().set_buffer_size(bytes);
        }
    }

    fn with_master_fd<R>(&self, f: impl FnOnce(BorrowedFd<'_>) -> R) -> io::Result<R> {
        if !self.is_pty() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, NOT_A_PTY));
        }
        self.master()
            .and_then(|m| m.with_fd(f))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the PTY master is closed"))
    }

    /// Change the terminal's window size (`TIOCSWINSZ` on the master); the child's
    /// foreground process group gets `SIGWINCH` when the size changes (CONTRACT L2).
    ///
    /// # Errors
    ///
    /// `Unsupported` for a pipe child; `InvalidInput` for a zero side; `NotConnected`
    /// once the master is closed; the OS error of the `ioctl`.
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
        log::debug!("process {}: resize to {rows}x{cols}", self.original_pid());
        self.with_master_fd(|fd| torsion_pty::set_window_size(fd, rows, cols))?
    }

    /// The terminal's window size `(rows, cols)`.
    ///
    /// # Errors
    ///
    /// As [`resize`](Self::resize).
    pub fn window_size(&self) -> io::Result<(u16, u16)> {
        self.with_master_fd(torsion_pty::window_size)?
    }

    /// The terminal's attributes (as the child's line discipline uses them).
    ///
    /// # Errors
    ///
    /// As [`resize`](Self::resize); the OS error of `tcgetattr`.
    pub fn termios(&self) -> io::Result<Termios> {
        self.with_master_fd(|fd| termios::get_attributes(fd))?
    }

    /// Set the terminal's attributes, taking effect as `when` says.
    ///
    /// # Errors
    ///
    /// As [`resize`](Self::resize); the OS error of `tcsetattr`.
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

    /// The child was reaped (from the watcher).
    pub(crate) fn reaped(&self, info: ExitInfo) {
        if !self.core.reaped(info) {
            return;
        }
        // A PTY whose output had ended already can be closed now (see end_of_output).
        if let Some(m) = self.master().filter(|m| m.at_eof()) {
            m.close();
        }
        self.core.end_if(self.channels_closed());
    }

    fn note_written(&self, data: &[u8]) {
        if let (Io::Pty(t), Some(&last)) = (&self.io, data.last()) {
            t.at_line_start.set(last == b'\n' || last == b'\r');
        }
    }
}

impl PipeOwner for Process {
    fn child_data_received(&self, child_fd: i32, data: &[u8]) {
        if !self.core.data_received(child_fd, data) {
            // CONTRACT F7: a panic closes that pipe; the child then sees EPIPE.
            if let Some(r) = self.reader(child_fd) {
                r.close();
            }
        }
    }

    fn child_connection_lost(&self, child_fd: i32, reason: Reason) {
        log::debug!(
            "process {} child fd {child_fd} closed: {reason}",
            self.original_pid()
        );
        // Taken out first and dropped after the borrows end.
        let (reader, writer) = match &self.io {
            Io::Pipes(p) => {
                let reader = {
                    let mut readers = p.readers.borrow_mut();
                    let i = readers.iter().position(|r| r.child_fd() == child_fd);
                    i.map(|i| readers.swap_remove(i))
                };
                let writer = {
                    let mut writers = p.writers.borrow_mut();
                    let i = writers.iter().position(|w| w.child_fd() == child_fd);
                    i.map(|i| writers.swap_remove(i))
                };
                (reader, writer)
            }
            Io::Pty(_) => (None, None),
        };
        drop((reader, writer));
        self.core.channel_lost(child_fd);
        self.core.end_if(self.channels_closed());
    }
}

impl MasterOwner for Process {
    fn data_received(&self, data: &[u8]) {
        if !self.core.data_received(PTY_OUTPUT_FD, data) {
            // CONTRACT F7 on the one channel: a panic closes the terminal.
            if let Some(m) = self.master() {
                m.file_descriptor().abort_connection();
            }
        }
    }

    /// The output ended (every slave fd is closed). The master is closed once the child is
    /// reaped: closing it while the child still runs (a child that closed its terminal fds
    /// and has not exited yet) would hang its terminal up and kill it with SIGHUP.
    fn end_of_output(&self) {
        if self.core.exit().is_some() {
            if let Some(m) = self.master() {
                m.close();
            }
        }
    }

    fn master_lost(&self, reason: Reason) {
        log::debug!(
            "PTY process {}: terminal closed: {reason}",
            self.original_pid()
        );
        if let Io::Pty(t) = &self.io {
            t.master_closed.set(true);
        }
        self.core.channel_lost(PTY_OUTPUT_FD);
        self.core.end_if(self.channels_closed());
    }
}

impl Consumer for Process {
    /// Writes go to the child's stdin or terminal (CONTRACT I5); without one (or after it
    /// closed) they are dropped, with a `warn!` on a child that never had a stdin pipe.
    fn write(&self, data: &[u8]) {
        if let Err(e) = self.write_to_child(0, data) {
            log::warn!("process {}: write dropped: {e}", self.original_pid());
        }
    }

    /// [`write`](Self::write) without copying `data` (CONTRACT D10).
    fn write_owned(&self, data: Vec<u8>) {
        match &self.io {
            Io::Pipes(_) => match self.writer(0) {
                Some(w) => w.write_owned(data),
                None => self.write(&data),
            },
            Io::Pty(_) => {
                if let Some(m) = self.master() {
                    self.note_written(&data);
                    m.file_descriptor().write_vec(data);
                }
            }
        }
    }

    /// [`write`](Self::write) without copying `data` (CONTRACT D10).
    fn write_shared(&self, data: SharedBytes) {
        match &self.io {
            Io::Pipes(_) => match self.writer(0) {
                Some(w) => w.write_shared(data),
                None => self.write(&data),
            },
            Io::Pty(_) => {
                if let Some(m) = self.master() {
                    self.note_written(&data);
                    m.file_descriptor().write_shared(data);
                }
            }
        }
    }

    fn write_sequence(&self, data: &[&[u8]]) {
        match &self.io {
            Io::Pipes(_) => match self.writer(0) {
                Some(w) => w.file_descriptor().write_sequence(data),
                None => log::warn!(
                    "process {}: write dropped: no stdin pipe",
                    self.original_pid()
                ),
            },
            Io::Pty(_) => {
                if let Some(m) = self.master() {
                    if let Some(last) = data.iter().rev().find(|c| !c.is_empty()) {
                        self.note_written(last);
                    }
                    m.file_descriptor().write_sequence(data);
                }
            }
        }
    }

    /// Registers with the stdin pipe or the terminal. Without one (or after it closed),
    /// the producer is stopped, as for any disconnected consumer (CONTRACT E1).
    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        if let Some(w) = self.writer(0) {
            return w.file_descriptor().register_producer(producer);
        }
        if let Some(m) = self.master() {
            return m.file_descriptor().register_producer(producer);
        }
        torsion_reactor::catch_panic("stop_producing", || producer.stop_producing());
        Ok(())
    }

    fn unregister_producer(&self) {
        if let Some(w) = self.writer(0) {
            w.file_descriptor().unregister_producer();
        }
        if let Some(m) = self.master() {
            m.file_descriptor().unregister_producer();
        }
    }
}

impl PushProducer for Process {
    /// Stop reading every channel from the child (CONTRACT I6). `process_exited` may still
    /// arrive; `process_ended` waits.
    fn pause_producing(&self) {
        self.core.set_paused(true);
        for r in self.readers() {
            r.stop_reading();
        }
        if let Some(m) = self.master() {
            m.file_descriptor().pause_producing();
        }
    }

    /// Start reading again; output buffered meanwhile is delivered (CONTRACT I6).
    fn resume_producing(&self) {
        self.core.set_paused(false);
        for r in self.readers() {
            r.start_reading();
        }
        if let Some(m) = self.master() {
            m.file_descriptor().resume_producing();
        }
    }

    fn stop_producing(&self) {
        ProcessTransport::lose_connection(self);
    }
}

impl ProcessTransport for Process {
    fn pid(&self) -> Option<u32> {
        self.core.pid()
    }

    /// On pipes, any fd mapped [`ChildFd::Write`]; on a PTY, fd 0 only (CONTRACT L7).
    fn write_to_child(&self, fd: i32, data: &[u8]) -> Result<(), ProcessError> {
        match &self.io {
            Io::Pipes(p) => {
                if !p.writable.contains(&fd) {
                    return Err(ProcessError::NotWritable { fd });
                }
                // A closed pipe drops the write, as any disconnected transport does (D1).
                if let Some(w) = self.writer(fd) {
                    w.write(data);
                }
            }
            Io::Pty(_) => {
                if fd != 0 {
                    return Err(ProcessError::Unsupported(ONE_CHANNEL_WRITE));
                }
                if let Some(m) = self.master() {
                    self.note_written(data);
                    m.file_descriptor().write(data);
                }
            }
        }
        Ok(())
    }

    /// On pipes: a writer flushes first, a reader stops now (CONTRACT I3). On a PTY:
    /// [`ProcessError::Unsupported`] (CONTRACT L7).
    fn close_child_fd(&self, fd: i32) -> Result<(), ProcessError> {
        if self.is_pty() {
            return Err(ProcessError::Unsupported(ONE_CHANNEL_CLOSE));
        }
        if let Some(w) = self.writer(fd) {
            w.file_descriptor().lose_connection();
        }
        if let Some(r) = self.reader(fd) {
            r.close();
        }
        Ok(())
    }

    /// On pipes, close fd 0 after flushing. On a PTY, send the terminal's EOF character
    /// (see [the type's docs](Process#on-a-pseudo-terminal-one-channel)).
    ///
    /// # Errors
    ///
    /// On a PTY: [`ProcessError::Unsupported`] if the terminal's `VEOF` is disabled;
    /// [`ProcessError::Os`] if its attributes cannot be read.
    fn close_stdin(&self) -> Result<(), ProcessError> {
        let Io::Pty(t) = &self.io else {
            return self.close_child_fd(0);
        };
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
        if t.at_line_start.get() {
            self.write(&[eof]);
        } else {
            self.write(&[eof, eof]);
        }
        t.at_line_start.set(true);
        Ok(())
    }

    fn signal_process(&self, signal: Signal) -> Result<(), ProcessError> {
        self.core.signal(signal)
    }

    /// Pipes (CONTRACT I4): stdin closed after flushing, stderr and stdout closed. PTY
    /// (CONTRACT L6): stop reading, flush, close the master (the child gets `SIGHUP`).
    /// Never kills.
    fn lose_connection(&self) {
        match &self.io {
            Io::Pipes(_) => {
                let _ = self.close_child_fd(0);
                let _ = self.close_child_fd(2);
                let _ = self.close_child_fd(1);
            }
            Io::Pty(_) => {
                if let Some(m) = self.master() {
                    m.file_descriptor().lose_connection();
                }
            }
        }
    }
}
