//! `CreateProcessW` with three standard handles and nothing else inherited (CONTRACT M1,
//! M2, G8).

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::path::PathBuf;

use torsion_transport::{ChildFd, ProcessBuilder, SpawnError, SpawnStep};
use windows_sys::Win32::Foundation::{HANDLE, HANDLE_FLAG_INHERIT, SetHandleInformation};
use windows_sys::Win32::System::Pipes::CreatePipe;
use windows_sys::Win32::System::SystemInformation::GetSystemDirectoryW;
use windows_sys::Win32::System::Threading::{
    CREATE_UNICODE_ENVIRONMENT, CreateProcessW, DeleteProcThreadAttributeList,
    EXTENDED_STARTUPINFO_PRESENT, InitializeProcThreadAttributeList,
    PROC_THREAD_ATTRIBUTE_HANDLE_LIST, PROCESS_INFORMATION, STARTF_USESTDHANDLES, STARTUPINFOEXW,
    UpdateProcThreadAttribute,
};

use super::command;

/// The parent's end of one of the child's standard handles.
#[derive(Debug)]
pub(crate) enum ParentEnd {
    /// The parent reads what the child writes on this fd.
    Read(File),
    /// The parent writes what the child reads on this fd.
    Write(File),
}

/// A child that `CreateProcessW` started.
#[derive(Debug)]
pub(crate) struct Created {
    pub(crate) pid: u32,
    pub(crate) process: OwnedHandle,
    /// The parent's pipe ends, by child fd (0, 1, 2).
    pub(crate) pipes: Vec<(i32, ParentEnd)>,
}

fn set_inheritable(h: &impl AsRawHandle, yes: bool) -> io::Result<()> {
    // SAFETY: `h` is a live handle borrowed for the call; only its inherit flag changes.
    let ok = unsafe {
        SetHandleInformation(
            h.as_raw_handle() as HANDLE,
            HANDLE_FLAG_INHERIT,
            u32::from(yes) * HANDLE_FLAG_INHERIT,
        )
    };
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// An anonymous pipe, (read end, write end), neither end inheritable.
///
/// # References
/// `CreatePipe` (namedpipeapi.h).
fn anon_pipe() -> io::Result<(OwnedHandle, OwnedHandle)> {
    let mut r: HANDLE = std::ptr::null_mut();
    let mut w: HANDLE = std::ptr::null_mut();
    // SAFETY: both out-pointers are live locals; null attributes = not inheritable;
    // size 0 = the system default buffer.
    if unsafe { CreatePipe(&mut r, &mut w, std::ptr::null(), 0) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: CreatePipe succeeded: both handles are open and owned by nobody else.
    Ok(unsafe {
        (
            OwnedHandle::from_raw_handle(r as RawHandle),
            OwnedHandle::from_raw_handle(w as RawHandle),
        )
    })
}

/// The system directory (`C:\Windows\System32`), searched last for a bare program name.
fn system_dir() -> Option<PathBuf> {
    let mut buf = [0u16; 512];
    // SAFETY: `buf` is valid for `buf.len()` wide characters of writes.
    let n = unsafe { GetSystemDirectoryW(buf.as_mut_ptr(), buf.len() as u32) } as usize;
    (n > 0 && n < buf.len()).then(|| PathBuf::from(command::from_wide(&buf[..n])))
}

/// The parent's own standard handle `fd` (0–2), duplicated (for `ChildFd::Inherit`).
fn parent_std(fd: i32) -> io::Result<OwnedHandle> {
    match fd {
        0 => io::stdin().as_handle().try_clone_to_owned(),
        1 => io::stdout().as_handle().try_clone_to_owned(),
        2 => io::stderr().as_handle().try_clone_to_owned(),
        _ => Err(io::Error::from(io::ErrorKind::InvalidInput)),
    }
}

/// Check what Windows can do (CONTRACT M1): child fds 0–2 only, no uid/gid, no PTY,
/// `Inherit` only of the parent's own 0–2.
pub(crate) fn check(builder: &ProcessBuilder) -> Result<(), SpawnError> {
    builder.validate()?;
    let program = builder.get_program();
    let no = |what: &str| Err(SpawnError::unsupported(program, what.to_owned()));
    if builder.get_uid().is_some() || builder.get_gid().is_some() {
        return no("uid and gid cannot be changed when spawning on Windows");
    }
    if builder.get_pty().is_some() {
        return no("PTY children are not supported on Windows");
    }
    if builder.get_new_session() || builder.get_process_group().is_some() {
        return no("sessions and process groups are POSIX-only");
    }
    for (fd, what) in builder.get_child_fds() {
        if !(0..=2).contains(&fd) {
            return no(&format!(
                "child fd {fd}: a Windows child has only standard handles 0, 1 and 2"
            ));
        }
        if what == ChildFd::Write && fd != 0 {
            return no(&format!(
                "child fd {fd} mapped Write: on Windows only stdin (fd 0) is written by the \
                 parent"
            ));
        }
        if let ChildFd::Inherit(p) = what {
            if !(0..=2).contains(&p) {
                return no(&format!(
                    "child fd {fd} inherits parent fd {p}: on Windows only the parent's \
                     standard handles 0, 1 and 2 can be passed"
                ));
            }
        }
    }
    Ok(())
}

/// Start the child `builder` describes (after [`check`]).
pub(crate) fn create(builder: &ProcessBuilder) -> Result<Created, SpawnError> {
    let program = builder.get_program();
    let setup = |e| SpawnError::os(SpawnStep::Setup, program, e);
    let cmd = command::command_line(program, builder.get_argv())?;
    let vars = command::environment(builder, std::env::vars_os());
    let mut env = command::environment_block(&vars);
    let app = command::find_program(program, command::child_path(builder), system_dir())
        .ok_or_else(|| {
            SpawnError::os(
                SpawnStep::Exec,
                program,
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "the program was not found on PATH or in the system directory",
                ),
            )
        })?;
    if let Some(cwd) = builder.get_cwd() {
        if !cwd.is_dir() {
            return Err(SpawnError::os(
                SpawnStep::Chdir,
                program,
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} is not a directory", command::show(cwd)),
                ),
            ));
        }
    }

    // The child's three handles (inheritable) and the parent's ends (not inheritable).
    let mut child_ends: [Option<OwnedHandle>; 3] = [None, None, None];
    let mut pipes = Vec::new();
    for (fd, what) in builder.get_child_fds() {
        let i = fd as usize;
        let child: OwnedHandle = match what {
            ChildFd::Read => {
                let (r, w) = anon_pipe().map_err(setup)?;
                pipes.push((fd, ParentEnd::Read(File::from(r))));
                w
            }
            ChildFd::Write => {
                let (r, w) = anon_pipe().map_err(setup)?;
                pipes.push((fd, ParentEnd::Write(File::from(w))));
                r
            }
            ChildFd::Null => OwnedHandle::from(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("NUL")
                    .map_err(setup)?,
            ),
            ChildFd::Inherit(p) => parent_std(p).map_err(setup)?,
            other => {
                return Err(SpawnError::unsupported(
                    program,
                    format!("child fd {fd}: {other:?} is not supported on Windows"),
                ));
            }
        };
        set_inheritable(&child, true).map_err(setup)?;
        child_ends[i] = Some(child);
    }
    let raw = |h: &Option<OwnedHandle>| {
        h.as_ref()
            .map_or(std::ptr::null_mut(), |h| h.as_raw_handle())
    };
    let std_handles: [RawHandle; 3] = [
        raw(&child_ends[0]),
        raw(&child_ends[1]),
        raw(&child_ends[2]),
    ];
    let mut inherit: Vec<HANDLE> = Vec::new();
    for h in std_handles {
        if !h.is_null() && !inherit.contains(&(h as HANDLE)) {
            inherit.push(h as HANDLE);
        }
    }

    let app_w = command::wide(app.as_os_str());
    let mut cmd = cmd;
    let cwd_w = builder.get_cwd().map(|c| command::wide(c.as_os_str()));

    // SAFETY: STARTUPINFOEXW is a plain C struct; all-zero is its documented empty value.
    let mut si: STARTUPINFOEXW = unsafe { std::mem::zeroed() };
    si.StartupInfo.cb = std::mem::size_of::<STARTUPINFOEXW>() as u32;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = std_handles[0] as HANDLE;
    si.StartupInfo.hStdOutput = std_handles[1] as HANDLE;
    si.StartupInfo.hStdError = std_handles[2] as HANDLE;

    // Inherit exactly these handles, even while other threads create inheritable ones.
    let attrs = AttributeList::with_handles(&inherit);
    let mut flags = CREATE_UNICODE_ENVIRONMENT;
    if let Some(a) = &attrs {
        si.lpAttributeList = a.ptr();
        flags |= EXTENDED_STARTUPINFO_PRESENT;
    }

    // SAFETY: PROCESS_INFORMATION is a plain C struct that CreateProcessW fills.
    let mut pi: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: `app_w`, `cmd` (writable, as required), `env`, `cwd_w` are live NUL-terminated
    // buffers of this frame; `si` is a valid STARTUPINFOEXW whose attribute list outlives
    // the call; `pi` is written by it.
    let ok = unsafe {
        CreateProcessW(
            app_w.as_ptr(),
            cmd.as_mut_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            1,
            flags,
            env.as_mut_ptr().cast(),
            cwd_w.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            &si.StartupInfo,
            &mut pi,
        )
    };
    let err = io::Error::last_os_error();
    drop(attrs);
    drop(child_ends);
    if ok == 0 {
        let step = if builder.get_cwd().is_some() && err.raw_os_error() == Some(267) {
            SpawnStep::Chdir
        } else {
            SpawnStep::Exec
        };
        return Err(SpawnError::os(step, OsString::from(program), err));
    }
    // SAFETY: CreateProcessW succeeded, so both handles are open and ours to own.
    let (process, thread) = unsafe {
        (
            OwnedHandle::from_raw_handle(pi.hProcess as RawHandle),
            OwnedHandle::from_raw_handle(pi.hThread as RawHandle),
        )
    };
    drop(thread);
    Ok(Created {
        pid: pi.dwProcessId,
        process,
        pipes,
    })
}

/// A `PROC_THREAD_ATTRIBUTE_LIST` holding one `PROC_THREAD_ATTRIBUTE_HANDLE_LIST`.
struct AttributeList {
    buf: Vec<usize>,
    /// The handle array the list points into: must live as long as the list.
    _handles: Box<[HANDLE]>,
}

impl AttributeList {
    /// `None` if the system refuses (then inheritance is not restricted: only the three
    /// standard handles are inheritable ones this crate made, but another thread's could
    /// leak into the child).
    fn with_handles(handles: &[HANDLE]) -> Option<AttributeList> {
        if handles.is_empty() {
            return None;
        }
        let mut size = 0usize;
        // SAFETY: a size query: null list, `size` receives the needed byte count.
        unsafe { InitializeProcThreadAttributeList(std::ptr::null_mut(), 1, 0, &mut size) };
        if size == 0 {
            return None;
        }
        let mut buf = vec![0usize; size.div_ceil(std::mem::size_of::<usize>())];
        let handles: Box<[HANDLE]> = handles.into();
        // SAFETY: `buf` is at least `size` bytes and pointer-aligned, as asked.
        if unsafe { InitializeProcThreadAttributeList(buf.as_mut_ptr().cast(), 1, 0, &mut size) }
            == 0
        {
            return None;
        }
        let list = AttributeList {
            buf,
            _handles: handles,
        };
        // SAFETY: the list was initialised above; the value points to `_handles`, which the
        // list owns for its whole life; the size is the array's size in bytes.
        let ok = unsafe {
            UpdateProcThreadAttribute(
                list.ptr(),
                0,
                PROC_THREAD_ATTRIBUTE_HANDLE_LIST as usize,
                list._handles.as_ptr().cast(),
                std::mem::size_of_val(&*list._handles),
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        (ok != 0).then_some(list)
    }

    fn ptr(&self) -> *mut core::ffi::c_void {
        self.buf.as_ptr().cast_mut().cast()
    }
}

impl Drop for AttributeList {
    fn drop(&mut self) {
        // SAFETY: the list was initialised by InitializeProcThreadAttributeList.
        unsafe { DeleteProcThreadAttributeList(self.ptr()) };
    }
}
