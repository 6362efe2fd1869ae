//! The child's credentials, computed in the parent (CONTRACT G5): the child only calls
//! `setgid`, `setgroups` and `setuid` with these values.
//!
//! Policy (the same as Twisted's `switchUID`, made explicit):
//!
//! - no uid asked for: `setgid(gid)` if a gid was asked for; supplementary groups are
//!   left alone (so a non-root caller may switch to one of its own groups);
//! - a uid asked for: the gid is the one asked for, else the user's primary group from
//!   the password database; the supplementary groups become the user's groups
//!   (`getgrouplist`, what `initgroups` would set); a uid with no password entry gets
//!   just `[gid]` (or the current effective gid), so the child never keeps the parent's
//!   supplementary groups under a new uid.

use std::ffi::CStr;
use std::io;

/// What the child sets, in this order: gid, groups, uid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) gid: Option<libc::gid_t>,
    pub(crate) groups: Option<Vec<libc::gid_t>>,
    pub(crate) uid: Option<libc::uid_t>,
}

/// Compute the child's credentials for the requested `uid`/`gid`.
pub(crate) fn credentials(uid: Option<u32>, gid: Option<u32>) -> io::Result<Credentials> {
    let Some(uid) = uid else {
        return Ok(Credentials {
            gid,
            groups: None,
            uid: None,
        });
    };
    let (gid, groups) = match user_entry(uid)? {
        Some((name, primary)) => {
            let gid = gid.unwrap_or(primary);
            (Some(gid), group_list(&name, gid)?)
        }
        None => {
            // SAFETY: getegid cannot fail and has no arguments.
            let current = unsafe { libc::getegid() };
            (gid, vec![gid.unwrap_or(current)])
        }
    };
    Ok(Credentials {
        gid,
        groups: Some(groups),
        uid: Some(uid),
    })
}

/// The user's name (NUL-terminated) and primary gid, `None` if `uid` has no entry.
fn user_entry(uid: libc::uid_t) -> io::Result<Option<(Vec<u8>, libc::gid_t)>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: all-zero bytes are a valid `passwd` (null pointers and integers).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `pwd`, `buf` (for `buf.len()` bytes) and `result` are valid for writing.
        let r = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if r == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        if result.is_null() || pwd.pw_name.is_null() {
            return Ok(None);
        }
        // SAFETY: on success `pw_name` points to a NUL-terminated string inside `buf`,
        // which is still alive.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_bytes_with_nul()
            .to_vec();
        return Ok(Some((name, pwd.pw_gid)));
    }
}

/// `getgrouplist(name, gid)`: every group the user belongs to, `gid` included.
fn group_list(name: &[u8], gid: libc::gid_t) -> io::Result<Vec<libc::gid_t>> {
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    type Gid = libc::c_int;
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    type Gid = libc::gid_t;
    let mut groups: Vec<Gid> = vec![0; 64];
    for _ in 0..8 {
        let mut n = libc::c_int::try_from(groups.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `name` is NUL-terminated; `groups` has room for `n` entries, and the
        // call writes at most `n`, updating `n` to the count it has or needs.
        let r = unsafe {
            libc::getgrouplist(
                name.as_ptr().cast(),
                gid as Gid,
                groups.as_mut_ptr(),
                &mut n,
            )
        };
        let n = usize::try_from(n).unwrap_or(0);
        if r != -1 {
            groups.truncate(n);
            return Ok(groups.into_iter().map(|g| g as libc::gid_t).collect());
        }
        // Too small: glibc says how many it needs; others do not, so grow anyway.
        let want = n.max(groups.len() * 2);
        groups.resize(want, 0);
    }
    Err(io::Error::other(
        "getgrouplist kept asking for a larger group list",
    ))
}
