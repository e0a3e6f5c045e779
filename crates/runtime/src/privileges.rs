//! `twcmanager run --user NAME`: started as root (a container, a hand-written init script), the
//! daemon becomes NAME, with NAME's groups (dialout for the serial adapter), before it opens
//! anything. The systemd unit starts it as its user directly and does not need this.

use nix::unistd::{Gid, Uid, User, geteuid, initgroups, setgid, setuid};
use std::ffi::CString;

/// Become `name` (user and groups) when running as root; as `name` already, nothing to do.
/// Any other case is an error naming the fix.
pub fn become_user(name: &str) -> Result<(), String> {
    let user = User::from_name(name)
        .map_err(|e| format!("--user {name}: cannot look the user up: {e}"))?
        .ok_or_else(|| {
            format!("--user {name}: no such user (create it, e.g. adduser --system {name})")
        })?;
    let me = geteuid();
    if me == user.uid {
        return Ok(());
    }
    if !me.is_root() {
        return Err(format!(
            "--user {name}: only root can switch users, and this runs as uid {me}; start as root or drop --user"
        ));
    }
    let cname = CString::new(name).map_err(|_| format!("--user {name:?}: not a valid name"))?;
    initgroups(&cname, user.gid).map_err(|e| format!("--user {name}: setting its groups: {e}"))?;
    setgid(user.gid).map_err(|e| format!("--user {name}: setgid({}): {e}", user.gid))?;
    setuid(user.uid).map_err(|e| format!("--user {name}: setuid({}): {e}", user.uid))?;
    // Dropped for good: getting root back must fail.
    if setuid(Uid::from_raw(0)).is_ok()
        || (user.gid.as_raw() != 0 && setgid(Gid::from_raw(0)).is_ok())
    {
        return Err(format!(
            "--user {name}: root privileges could be regained; refusing to run"
        ));
    }
    Ok(())
}
