//! SysV message queues (`ftok`, `msgget`, `msgsnd`, `msgrcv`, `msgctl`): the only unsafe code of
//! the crate. Every call is non-blocking (`IPC_NOWAIT`), so none can stall the runtime.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The key TWCManager and its PHP page derive from a path and a project id (`ftok`).
pub fn ftok(path: &Path, id: u8) -> io::Result<i32> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated string that lives across the call.
    let key = unsafe { libc::ftok(c.as_ptr(), i32::from(id)) };
    if key == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(key)
}

/// An open message queue.
#[derive(Debug, Clone, Copy)]
pub struct Queue {
    id: i32,
}

const HEADER: usize = std::mem::size_of::<libc::c_long>();

impl Queue {
    /// Open the queue of `key`, creating it with `mode` permissions when missing.
    pub fn open(key: i32, mode: u32) -> io::Result<Queue> {
        // SAFETY: msgget takes plain integers.
        let id = unsafe { libc::msgget(key, libc::IPC_CREAT | (mode & 0o777) as i32) };
        if id == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(Queue { id })
    }

    /// Take the oldest message of type `mtype`, at most `max` bytes (longer ones are cut, as
    /// with `MSG_NOERROR`). `Ok(None)` when there is none.
    pub fn recv(&self, mtype: i64, max: usize) -> io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; HEADER + max];
        // SAFETY: `buf` holds a `long` type field followed by `max` bytes of text, which is the
        // layout msgrcv writes; its size is passed as `max`.
        let n = unsafe {
            libc::msgrcv(
                self.id,
                buf.as_mut_ptr().cast(),
                max,
                mtype as libc::c_long,
                libc::IPC_NOWAIT | libc::MSG_NOERROR,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOMSG) | Some(libc::EAGAIN) => Ok(None),
                _ => Err(e),
            };
        }
        let n = n as usize;
        Ok(Some(buf[HEADER..HEADER + n].to_vec()))
    }

    /// Queue `text` as a message of type `mtype`; fails (`EAGAIN`) rather than waits when the
    /// queue is full.
    pub fn send(&self, mtype: i64, text: &[u8]) -> io::Result<()> {
        let mut buf = vec![0u8; HEADER + text.len()];
        buf[..HEADER].copy_from_slice(&(mtype as libc::c_long).to_ne_bytes());
        buf[HEADER..].copy_from_slice(text);
        // SAFETY: `buf` is a `long` type followed by `text.len()` bytes, the msgsnd layout.
        let r = unsafe { libc::msgsnd(self.id, buf.as_ptr().cast(), text.len(), libc::IPC_NOWAIT) };
        if r == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Remove the queue (tests; TWCManager leaves its queue in place and so does the daemon).
    pub fn remove(&self) -> io::Result<()> {
        // SAFETY: IPC_RMID ignores the buffer argument, which may be null.
        let r = unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
        if r == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
