//! Windows back end: arrives with the Windows issue (mio's IOCP back end, a waker-based
//! signal substitute for console control events).

compile_error!("torsion-reactor does not support Windows yet");
