//! Terminal attributes: raw mode for the parent's own terminal ([`RawModeGuard`]), and
//! reading or changing a terminal's settings — this process's, or a PTY's through its
//! master ([`get_attributes`], [`set_attributes`], [`set_echo`]).
//!
//! # Examples
//!
//! Echo off on a fresh PTY, read back through the master:
//!
//! ```
//! use torsion_pty::termios::{self, When};
//!
//! let (master, _slave) = torsion_pty::open_pty()?;
//! assert!(termios::is_terminal(&master));
//! termios::set_echo(&master, false)?;
//! assert!(!termios::get_attributes(&master)?.echo());
//! let mut t = termios::get_attributes(&master)?;
//! t.make_raw();
//! termios::set_attributes(&master, When::Now, &t)?;
//! assert!(!termios::get_attributes(&master)?.canonical());
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Portability
//!
//! On Linux, termios calls on a PTY master act on the slave's settings (the ones the
//! child's line discipline uses); the BSDs and macOS behave the same for the flags used
//! here.

use std::fmt;
use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, OwnedFd};

use crate::sys::unix::termios as sys;

/// A terminal's attributes (POSIX `struct termios`): what [`get_attributes`] reads and
/// [`set_attributes`] writes. The common switches have methods; anything else is
/// reachable through [`as_raw`](Self::as_raw)/[`as_raw_mut`](Self::as_raw_mut).
#[derive(Clone, Copy)]
pub struct Termios(libc::termios);

impl fmt::Debug for Termios {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Termios")
            .field("iflag", &format_args!("{:#x}", self.0.c_iflag))
            .field("oflag", &format_args!("{:#x}", self.0.c_oflag))
            .field("cflag", &format_args!("{:#x}", self.0.c_cflag))
            .field("lflag", &format_args!("{:#x}", self.0.c_lflag))
            .field("echo", &self.echo())
            .field("canonical", &self.canonical())
            .finish()
    }
}

/// A control character of a terminal (an index into `c_cc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ControlChar {
    /// `VEOF` (default `^D`): in canonical mode, ends a line without a newline; on an
    /// empty line, the reader sees end-of-file.
    Eof,
    /// `VEOL`: an additional end-of-line character.
    Eol,
    /// `VERASE` (default `^?` or `^H`): erase the last character.
    Erase,
    /// `VKILL` (default `^U`): erase the line.
    Kill,
    /// `VINTR` (default `^C`): `SIGINT` to the foreground process group.
    Intr,
    /// `VQUIT` (default `^\`): `SIGQUIT` to the foreground process group.
    Quit,
    /// `VSUSP` (default `^Z`): `SIGTSTP` to the foreground process group.
    Susp,
}

impl ControlChar {
    fn index(self) -> usize {
        match self {
            ControlChar::Eof => libc::VEOF,
            ControlChar::Eol => libc::VEOL,
            ControlChar::Erase => libc::VERASE,
            ControlChar::Kill => libc::VKILL,
            ControlChar::Intr => libc::VINTR,
            ControlChar::Quit => libc::VQUIT,
            ControlChar::Susp => libc::VSUSP,
        }
    }
}

impl Termios {
    /// True if typed characters are echoed back (`ECHO`).
    pub fn echo(&self) -> bool {
        self.0.c_lflag & libc::ECHO != 0
    }

    /// Turn echo (`ECHO`) on or off.
    pub fn set_echo(&mut self, on: bool) {
        if on {
            self.0.c_lflag |= libc::ECHO;
        } else {
            self.0.c_lflag &= !libc::ECHO;
        }
    }

    /// True in canonical (line-by-line, editable) mode (`ICANON`).
    pub fn canonical(&self) -> bool {
        self.0.c_lflag & libc::ICANON != 0
    }

    /// Turn canonical mode (`ICANON`) on or off.
    pub fn set_canonical(&mut self, on: bool) {
        if on {
            self.0.c_lflag |= libc::ICANON;
        } else {
            self.0.c_lflag &= !libc::ICANON;
        }
    }

    /// True if output processing (`OPOST`, such as `\n` → `\r\n`) is on.
    pub fn output_processing(&self) -> bool {
        self.0.c_oflag & libc::OPOST != 0
    }

    /// Raw mode, as `cfmakeraw(3)` sets it: no echo, no line editing, no signals from
    /// keys, no input or output translation, 8-bit characters, reads return after one byte.
    ///
    /// # References
    ///
    /// [`cfmakeraw(3)`](https://man7.org/linux/man-pages/man3/cfmakeraw.3.html).
    #[doc(alias = "cfmakeraw")]
    pub fn make_raw(&mut self) {
        let t = &mut self.0;
        t.c_iflag &= !(libc::IGNBRK
            | libc::BRKINT
            | libc::PARMRK
            | libc::ISTRIP
            | libc::INLCR
            | libc::IGNCR
            | libc::ICRNL
            | libc::IXON);
        t.c_oflag &= !libc::OPOST;
        t.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::ISIG | libc::IEXTEN);
        t.c_cflag &= !(libc::CSIZE | libc::PARENB);
        t.c_cflag |= libc::CS8;
        t.c_cc[libc::VMIN] = 1;
        t.c_cc[libc::VTIME] = 0;
    }

    /// The control character `which`, or `None` if it is disabled (`_POSIX_VDISABLE`).
    pub fn control_char(&self, which: ControlChar) -> Option<u8> {
        let c = self.0.c_cc[which.index()];
        (c != sys::VDISABLE).then_some(c)
    }

    /// Set the control character `which`; `None` disables it.
    pub fn set_control_char(&mut self, which: ControlChar, value: Option<u8>) {
        self.0.c_cc[which.index()] = value.unwrap_or(sys::VDISABLE);
    }

    /// The C structure, to read flags this type has no method for.
    pub fn as_raw(&self) -> &libc::termios {
        &self.0
    }

    /// The C structure, to change flags this type has no method for.
    pub fn as_raw_mut(&mut self) -> &mut libc::termios {
        &mut self.0
    }
}

impl From<libc::termios> for Termios {
    fn from(t: libc::termios) -> Self {
        Termios(t)
    }
}

/// When [`set_attributes`] takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum When {
    /// At once (`TCSANOW`).
    Now,
    /// After the output already written has been sent (`TCSADRAIN`).
    #[default]
    Drain,
    /// After output drains, discarding input not yet read (`TCSAFLUSH`).
    Flush,
}

impl When {
    fn action(self) -> libc::c_int {
        match self {
            When::Now => libc::TCSANOW,
            When::Drain => libc::TCSADRAIN,
            When::Flush => libc::TCSAFLUSH,
        }
    }
}

/// The attributes of the terminal `fd` (for a PTY master: the PTY's).
///
/// # Errors
///
/// `ENOTTY` if `fd` is not a terminal; `EBADF`.
///
/// # References
///
/// [`tcgetattr(3)`](https://man7.org/linux/man-pages/man3/tcgetattr.3.html).
#[doc(alias = "tcgetattr")]
pub fn get_attributes(fd: impl AsFd) -> io::Result<Termios> {
    sys::get(fd.as_fd()).map(Termios)
}

/// Set the attributes of the terminal `fd`, taking effect as `when` says.
///
/// # Errors
///
/// `ENOTTY` if `fd` is not a terminal; `EBADF`; `EINVAL` for an invalid setting.
///
/// # References
///
/// [`tcsetattr(3)`](https://man7.org/linux/man-pages/man3/tcsetattr.3.html).
#[doc(alias = "tcsetattr")]
pub fn set_attributes(fd: impl AsFd, when: When, termios: &Termios) -> io::Result<()> {
    sys::set(fd.as_fd(), when.action(), &termios.0)
}

/// Turn echo on or off on the terminal `fd`, at once.
///
/// # Errors
///
/// As [`get_attributes`] and [`set_attributes`].
pub fn set_echo(fd: impl AsFd, on: bool) -> io::Result<()> {
    let fd = fd.as_fd();
    let mut t = get_attributes(fd)?;
    t.set_echo(on);
    set_attributes(fd, When::Now, &t)
}

/// True if `fd` is a terminal (`isatty(3)`).
#[doc(alias = "isatty")]
pub fn is_terminal(fd: impl AsFd) -> bool {
    fd.as_fd().is_terminal()
}

/// The window size `(rows, cols)` of the terminal `fd`.
///
/// # Errors
///
/// `ENOTTY` if `fd` is not a terminal; `EBADF`.
///
/// # References
///
/// [`ioctl_tty(2)`](https://man7.org/linux/man-pages/man2/ioctl_tty.2.html) `TIOCGWINSZ`.
pub fn terminal_size(fd: impl AsFd) -> io::Result<(u16, u16)> {
    crate::window_size(fd.as_fd())
}

/// A terminal in raw mode until this guard is dropped or [`restore`](Self::restore)d:
/// what a program relaying keys to a child on a PTY (`script(1)`, `ssh`) does to its own
/// terminal, so every key goes to the child and the child's line discipline does the
/// echoing and translating.
///
/// The guard holds a duplicate of the fd, so it outlives the borrow it was made from.
/// Dropping restores the saved attributes (errors are logged); call
/// [`restore`](Self::restore) to see the error. `std::process::exit` skips destructors:
/// drop or restore the guard before exiting.
///
/// # Examples
///
/// ```no_run
/// use torsion_pty::termios::{self, RawModeGuard};
///
/// let stdin = std::io::stdin();
/// if termios::is_terminal(&stdin) {
///     let mut guard = RawModeGuard::enter(&stdin)?;
///     // ... relay keys ...
///     guard.restore()?;
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RawModeGuard {
    fd: OwnedFd,
    saved: Termios,
    restored: bool,
}

impl fmt::Debug for RawModeGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawModeGuard")
            .field("fd", &self.fd)
            .field("restored", &self.restored)
            .finish()
    }
}

impl RawModeGuard {
    /// Save the attributes of the terminal `fd` and switch it to raw mode
    /// ([`Termios::make_raw`]) after pending output drains (`TCSADRAIN`; typed-ahead input
    /// is kept).
    ///
    /// # Errors
    ///
    /// `ENOTTY` if `fd` is not a terminal; the error of duplicating `fd` or of
    /// `tcsetattr` (the terminal is then unchanged).
    pub fn enter(fd: impl AsFd) -> io::Result<RawModeGuard> {
        let fd = fd.as_fd().try_clone_to_owned()?;
        let saved = get_attributes(&fd)?;
        let mut raw = saved;
        raw.make_raw();
        set_attributes(&fd, When::Drain, &raw)?;
        log::debug!("terminal {fd:?} in raw mode");
        Ok(RawModeGuard {
            fd,
            saved,
            restored: false,
        })
    }

    /// The attributes the terminal had before.
    pub fn saved(&self) -> &Termios {
        &self.saved
    }

    /// Put the saved attributes back (after pending output drains). Calling it again does
    /// nothing.
    ///
    /// # Errors
    ///
    /// The error of `tcsetattr`; the guard then tries again when dropped.
    pub fn restore(&mut self) -> io::Result<()> {
        if self.restored {
            return Ok(());
        }
        set_attributes(&self.fd, When::Drain, &self.saved)?;
        self.restored = true;
        log::debug!("terminal {:?} restored", self.fd);
        Ok(())
    }
}

impl Drop for RawModeGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            log::warn!("restoring the terminal's attributes failed: {e}");
        }
    }
}
