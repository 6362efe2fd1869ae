//! The termios helpers: raw mode and back for a terminal, attributes, size.

// Unix only: termios is POSIX (torsion-pty is empty elsewhere).
#![cfg(unix)]

use std::io::{Read, Write};
use std::os::fd::AsFd;

use torsion_pty::termios::{self, ControlChar, RawModeGuard, When};

#[test]
fn raw_mode_guard_enters_raw_mode_and_restores_on_restore_and_on_drop() {
    let (_master, slave) = torsion_pty::open_pty().unwrap();
    let before = termios::get_attributes(&slave).unwrap();
    assert!(before.echo() && before.canonical() && before.output_processing());
    let mut guard = RawModeGuard::enter(&slave).unwrap();
    let during = termios::get_attributes(&slave).unwrap();
    assert!(!during.echo() && !during.canonical() && !during.output_processing());
    assert!(guard.saved().echo());
    guard.restore().unwrap();
    guard.restore().unwrap();
    assert!(termios::get_attributes(&slave).unwrap().canonical());

    let guard = RawModeGuard::enter(&slave).unwrap();
    assert!(!termios::get_attributes(&slave).unwrap().canonical());
    drop(guard);
    let after = termios::get_attributes(&slave).unwrap();
    assert!(after.echo() && after.canonical() && after.output_processing());
}

#[test]
fn raw_mode_guard_refuses_what_is_not_a_terminal() {
    let (r, _w) = std::io::pipe().unwrap();
    assert!(!termios::is_terminal(&r));
    let e = RawModeGuard::enter(&r).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTTY), "{e}");
    assert!(termios::terminal_size(&r).is_err());
}

#[test]
fn attributes_set_through_the_master_apply_to_the_terminal() {
    let (master, slave) = torsion_pty::open_pty().unwrap();
    assert!(termios::is_terminal(&master) && termios::is_terminal(&slave));
    torsion_pty::set_window_size(master.as_fd(), 50, 132).unwrap();
    assert_eq!(termios::terminal_size(&slave).unwrap(), (50, 132));

    // Echo off through the master: what the master writes is not echoed back.
    termios::set_echo(&master, false).unwrap();
    assert!(!termios::get_attributes(&slave).unwrap().echo());
    let mut t = termios::get_attributes(&master).unwrap();
    assert_eq!(t.control_char(ControlChar::Eof), Some(4), "^D by default");
    t.make_raw();
    termios::set_attributes(&master, When::Now, &t).unwrap();
    let mut m = std::fs::File::from(master);
    let mut s = std::fs::File::from(slave);
    m.write_all(b"a\rb\n").unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"a\rb\n", "raw: no translation");
    set_nonblocking(m.as_fd());
    assert!(m.read(&mut buf).is_err(), "nothing echoed");

    t.set_control_char(ControlChar::Eof, None);
    assert_eq!(t.control_char(ControlChar::Eof), None);
    assert!(format!("{t:?}").contains("echo: false"));
}

/// Set `O_NONBLOCK` on the test's own end.
fn set_nonblocking(fd: std::os::fd::BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    // SAFETY: F_GETFL/F_SETFL take no pointer; `fd` is open for the borrow.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0);
    // SAFETY: as above.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) };
    assert_eq!(r, 0);
}
