//! Signal numbers of Linux on x86, ARM and RISC-V (the generic table). Windows uses the
//! same numbers as labels: its back end maps signals by name, not number.

use crate::Signal;

pub(crate) fn signal_number(sig: Signal) -> Option<i32> {
    Some(match sig {
        Signal::Hup => 1,
        Signal::Int => 2,
        Signal::Quit => 3,
        Signal::Ill => 4,
        Signal::Trap => 5,
        Signal::Abrt => 6,
        Signal::Bus => 7,
        Signal::Fpe => 8,
        Signal::Kill => 9,
        Signal::Usr1 => 10,
        Signal::Segv => 11,
        Signal::Usr2 => 12,
        Signal::Pipe => 13,
        Signal::Alrm => 14,
        Signal::Term => 15,
        Signal::Chld => 17,
        Signal::Cont => 18,
        Signal::Stop => 19,
        Signal::Tstp => 20,
        Signal::Ttin => 21,
        Signal::Ttou => 22,
        Signal::Winch => 28,
        Signal::Raw(n) => return (n > 0).then_some(n),
    })
}
