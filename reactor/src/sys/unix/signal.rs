//! The process-wide signal registry behind `Reactor::on_signal` (CONTRACT B7).
//!
//! Signal dispositions are process-wide, reactors are not: each reactor that watches
//! signals takes one of 64 *slots*, each with its own self-pipe. The handler writes the
//! signal number to the pipe of every slot interested in that signal, then chains to the
//! handler that was installed before ours (if it was a function). All work happens in the
//! loops that read the pipes. Handlers use `SA_RESTART`, so system calls elsewhere in the
//! process are not interrupted.
//!
//! A slot's pipe is never closed: a handler running on another thread may still hold its fd
//! number, and closing it could let the number be reused by an unrelated file. Released
//! slots keep their pipe for the next reactor. So the first reactor that watches a signal
//! costs two fds for the life of the process.
//!
//! If no reactor watches a signal whose default action ends the process, and the previous
//! disposition was the default, the handler restores the default and re-raises it, so a
//! program whose reactor has stopped still dies on SIGINT as users expect.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use torsion_transport::Signal;

use super::{drain, nonblocking_pipe, syscall};

/// The number `signal` has on this system.
///
/// # Errors
///
/// `InvalidInput` for a named signal this system lacks or a non-positive number.
pub(crate) fn signal_number(signal: Signal) -> io::Result<i32> {
    signal.as_raw().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{signal} does not exist on this system"),
        )
    })
}

/// Highest signal number handled, plus one.
const NSIG: usize = 65;
/// Number of reactors that can watch signals at once.
pub(crate) const SLOTS: usize = 64;

static SLOT_WRITE_FD: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];
static INTEREST: [AtomicU64; NSIG] = [const { AtomicU64::new(0) }; NSIG];
static INSTALLED: [AtomicBool; NSIG] = [const { AtomicBool::new(false) }; NSIG];
static PREV_HANDLER: [AtomicUsize; NSIG] = [const { AtomicUsize::new(0) }; NSIG];
static PREV_FLAGS: [AtomicUsize; NSIG] = [const { AtomicUsize::new(0) }; NSIG];

struct SlotPipe {
    read: OwnedFd,
    write: OwnedFd,
    in_use: bool,
}

static SLOT_PIPES: Mutex<Vec<SlotPipe>> = Mutex::new(Vec::new());
/// Serialises `sigaction` installs.
static INSTALL_LOCK: Mutex<()> = Mutex::new(());

/// One reactor's slot: its pipe's read end, and the signals it watches.
#[derive(Debug)]
pub(crate) struct Slot {
    index: usize,
    read_fd: RawFd,
}

impl Slot {
    /// Take a free slot (creating its pipe if needed) and drain stale bytes from it.
    pub(crate) fn acquire() -> io::Result<Slot> {
        let mut pipes = SLOT_PIPES.lock().unwrap_or_else(|p| p.into_inner());
        let index = match pipes.iter().position(|p| !p.in_use) {
            Some(i) => i,
            None if pipes.len() < SLOTS => {
                let (read, write) = nonblocking_pipe()?;
                pipes.push(SlotPipe {
                    read,
                    write,
                    in_use: false,
                });
                pipes.len() - 1
            }
            None => {
                return Err(io::Error::other(
                    "too many reactors watching signals at once (the limit is 64)",
                ));
            }
        };
        let pipe = &mut pipes[index];
        pipe.in_use = true;
        let read_fd = pipe.read.as_raw_fd();
        drain(read_fd, &mut Vec::new());
        SLOT_WRITE_FD[index].store(pipe.write.as_raw_fd(), Ordering::SeqCst);
        Ok(Slot { index, read_fd })
    }

    /// Register the pipe's read end with the poller under `token`.
    pub(crate) fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut SourceFd(&self.read_fd), token, Interest::READABLE)
    }

    /// Deregister the pipe's read end (before the slot is dropped).
    pub(crate) fn deregister(&self, registry: &Registry) {
        if let Err(e) = registry.deregister(&mut SourceFd(&self.read_fd)) {
            log::warn!("deregistering the signal pipe: {e}");
        }
    }

    /// Start delivering `signum` to this slot, installing the process handler if needed.
    pub(crate) fn watch(&self, signum: i32) -> io::Result<()> {
        let sig = check_signum(signum)?;
        install(sig)?;
        INTEREST[sig].fetch_or(1 << self.index, Ordering::SeqCst);
        Ok(())
    }

    /// Stop delivering `signum` to this slot.
    pub(crate) fn unwatch(&self, signum: i32) {
        if let Ok(sig) = check_signum(signum) {
            INTEREST[sig].fetch_and(!(1 << self.index), Ordering::SeqCst);
        }
    }

    /// The signal numbers that arrived since the last call, in arrival order, with
    /// duplicates collapsed.
    pub(crate) fn take_arrived(&self) -> Vec<i32> {
        let mut bytes = Vec::new();
        drain(self.read_fd, &mut bytes);
        let mut out: Vec<i32> = Vec::new();
        for b in bytes {
            let s = i32::from(b);
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        for interest in &INTEREST {
            interest.fetch_and(!(1 << self.index), Ordering::SeqCst);
        }
        let mut pipes = SLOT_PIPES.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pipes.get_mut(self.index) {
            p.in_use = false;
        }
    }
}

fn check_signum(signum: i32) -> io::Result<usize> {
    let ok = signum > 0
        && (signum as usize) < NSIG
        && signum != libc::SIGKILL
        && signum != libc::SIGSTOP;
    if ok {
        Ok(signum as usize)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signum} cannot be caught"),
        ))
    }
}

fn our_handler() -> usize {
    handler as *const () as usize
}

/// The current disposition of `signum`, or `None` if it cannot be read.
fn current_action(signum: libc::c_int) -> Option<libc::sigaction> {
    let mut cur = zeroed_sigaction();
    // SAFETY: querying the current action into a valid struct; nothing is changed.
    let rc = unsafe { libc::sigaction(signum, std::ptr::null(), &mut cur) };
    (rc == 0).then_some(cur)
}

/// True if `signal` is ignored by the disposition the process had before torsion: it is
/// `SIG_IGN` now, or torsion's handler was installed over a `SIG_IGN` (Twisted's rule for
/// SIGINT: a background job of a non-interactive shell must not be stopped by it).
pub(crate) fn inherited_as_ignored(signal: Signal) -> bool {
    let Some(sig) = signal.as_raw().and_then(|n| check_signum(n).ok()) else {
        return false;
    };
    match current_action(sig as libc::c_int) {
        Some(cur) if cur.sa_sigaction == libc::SIG_IGN => true,
        Some(cur) if cur.sa_sigaction == our_handler() => {
            PREV_HANDLER[sig].load(Ordering::SeqCst) == libc::SIG_IGN
        }
        _ => false,
    }
}

fn install(sig: usize) -> io::Result<()> {
    let _guard = INSTALL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if INSTALLED[sig].load(Ordering::SeqCst)
        && current_action(sig as libc::c_int).is_some_and(|a| a.sa_sigaction == our_handler())
    {
        return Ok(());
    }
    // Not installed, or someone replaced our handler since: (re)install, chaining to what
    // is there now.
    let mut new: libc::sigaction = zeroed_sigaction();
    new.sa_sigaction = our_handler();
    new.sa_flags = libc::SA_RESTART | libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `sa_mask` is a valid sigset_t inside `new`.
    unsafe { libc::sigemptyset(&mut new.sa_mask) };
    let mut old: libc::sigaction = zeroed_sigaction();
    syscall!(sigaction(sig as libc::c_int, &new, &mut old))?;
    PREV_HANDLER[sig].store(old.sa_sigaction, Ordering::SeqCst);
    PREV_FLAGS[sig].store(old.sa_flags as usize, Ordering::SeqCst);
    INSTALLED[sig].store(true, Ordering::SeqCst);
    Ok(())
}

fn zeroed_sigaction() -> libc::sigaction {
    // SAFETY: sigaction is a plain C struct for which all-zero bytes are a valid value
    // (SIG_DFL, no flags, empty mask).
    unsafe { MaybeUninit::<libc::sigaction>::zeroed().assume_init() }
}

fn default_terminates(sig: libc::c_int) -> bool {
    matches!(
        sig,
        libc::SIGHUP
            | libc::SIGINT
            | libc::SIGQUIT
            | libc::SIGTERM
            | libc::SIGUSR1
            | libc::SIGUSR2
            | libc::SIGALRM
    )
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: always safe to call; returns the calling thread's errno slot.
    unsafe { libc::__errno_location() }
}

#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "dragonfly"
))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: always safe to call; returns the calling thread's errno slot.
    unsafe { libc::__error() }
}

#[cfg(any(target_os = "openbsd", target_os = "netbsd"))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: always safe to call; returns the calling thread's errno slot.
    unsafe { libc::__errno() }
}

/// The signal handler: async-signal-safe calls only (`write`, `sigaction`, `raise`).
extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let errno = errno_location();
    // SAFETY: errno_location returns a valid pointer to this thread's errno.
    let saved = unsafe { *errno };
    let idx = sig as usize;
    if idx >= NSIG {
        return;
    }
    let mask = INTEREST[idx].load(Ordering::SeqCst);
    let byte = sig as u8;
    for (slot, fd) in SLOT_WRITE_FD.iter().enumerate() {
        if mask & (1 << slot) != 0 {
            let fd = fd.load(Ordering::SeqCst);
            if fd >= 0 {
                // SAFETY: `byte` is valid for one byte of reads; a full pipe just fails
                // with EAGAIN, which is fine: the reader already has a wake-up pending.
                unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
            }
        }
    }
    let prev = PREV_HANDLER[idx].load(Ordering::SeqCst);
    let prev_flags = PREV_FLAGS[idx].load(Ordering::SeqCst) as libc::c_int;
    if prev != libc::SIG_DFL && prev != libc::SIG_IGN {
        if prev_flags & libc::SA_SIGINFO != 0 {
            // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this
            // signature; we pass through the kernel's arguments unchanged.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(prev) };
            f(sig, info, ctx);
        } else {
            // SAFETY: the previous handler was installed without SA_SIGINFO, so it takes
            // only the signal number.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev) };
            f(sig);
        }
    } else if mask == 0 && prev == libc::SIG_DFL && default_terminates(sig) {
        let dfl = zeroed_sigaction();
        // SAFETY: sigaction and raise are async-signal-safe; `dfl` is SIG_DFL.
        unsafe {
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
            libc::raise(sig);
        }
    }
    // SAFETY: as above; restores the interrupted code's errno.
    unsafe { *errno = saved };
}

/// Ignore SIGPIPE if it is at its default disposition (which kills the process), so a
/// write to a pipe or socket whose reader is gone is an `EPIPE` error, never a death
/// (CONTRACT I1). A handler someone installed, or an existing ignore, is left alone.
/// Children get every signal reset to its default before exec (CONTRACT H2).
pub(crate) fn ignore_sigpipe_if_default() {
    let mut cur = zeroed_sigaction();
    // SAFETY: querying the current action into a valid struct.
    if unsafe { libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut cur) } != 0 {
        return;
    }
    if cur.sa_sigaction == libc::SIG_DFL {
        let mut ign = zeroed_sigaction();
        ign.sa_sigaction = libc::SIG_IGN;
        // SAFETY: installing SIG_IGN from a valid struct.
        unsafe { libc::sigaction(libc::SIGPIPE, &ign, std::ptr::null_mut()) };
    }
}
