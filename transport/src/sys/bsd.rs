//! Signal numbers of macOS and the BSDs.

use crate::Signal;

pub(crate) fn signal_number(sig: Signal) -> Option<i32> {
    Some(match sig {
        Signal::Hup => 1,
        Signal::Int => 2,
        Signal::Quit => 3,
        Signal::Ill => 4,
        Signal::Trap => 5,
        Signal::Abrt => 6,
        Signal::Fpe => 8,
        Signal::Kill => 9,
        Signal::Bus => 10,
        Signal::Segv => 11,
        Signal::Pipe => 13,
        Signal::Alrm => 14,
        Signal::Term => 15,
        Signal::Stop => 17,
        Signal::Tstp => 18,
        Signal::Cont => 19,
        Signal::Chld => 20,
        Signal::Ttin => 21,
        Signal::Ttou => 22,
        Signal::Winch => 28,
        Signal::Usr1 => 30,
        Signal::Usr2 => 31,
        Signal::Raw(n) => return (n > 0).then_some(n),
    })
}
