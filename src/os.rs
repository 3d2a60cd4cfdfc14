//! Process limits the workload runs into.

/// Raises the soft open-file limit to the hard limit: every connection is a descriptor,
/// and churn with TIME_WAIT-free RSTs or many workers can open thousands. Returns the
/// limit now in force, or `None` where it cannot be read.
pub fn raise_fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return Some(raised.rlim_cur);
            }
        }
    }
    Some(lim.rlim_cur)
}

/// The soft open-file limit in force.
pub fn fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur)
}

/// setsockopt(2) with a plain value: the one place that hands the kernel a raw pointer,
/// for the options `socket2` does not cover.
#[cfg(unix)]
pub fn set_socket_option<T: Copy>(
    socket: &impl std::os::fd::AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: T,
) -> std::io::Result<()> {
    // SAFETY: a valid fd and a value that lives through the call, with its own size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Restricts the ephemeral ports a socket may connect from (Linux 6.3+,
/// `IP_LOCAL_PORT_RANGE`), so port exhaustion can be shown without touching the
/// system-wide `ip_local_port_range`.
#[cfg(target_os = "linux")]
pub fn set_local_port_range(
    socket: &impl std::os::fd::AsRawFd,
    (lo, hi): (u16, u16),
) -> std::io::Result<()> {
    // From linux/in.h; not in the libc crate yet.
    const IP_LOCAL_PORT_RANGE: libc::c_int = 51;
    let value: u32 = (u32::from(hi) << 16) | u32::from(lo);
    set_socket_option(socket, libc::IPPROTO_IP, IP_LOCAL_PORT_RANGE, value)
}

#[cfg(not(target_os = "linux"))]
pub fn set_local_port_range<T>(_: &T, _: (u16, u16)) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "--local-ports needs Linux 6.3 or later",
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn soft_limit_ends_at_the_hard_limit() {
        let now = super::raise_fd_limit().expect("getrlimit");
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: reads into a local struct.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
        assert_eq!(now, lim.rlim_cur);
    }
}
