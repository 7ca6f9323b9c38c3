//! What pid 1 does around the suites: mounts, module load and unload, power-off, and running
//! a check in a child process (another uid, or just another process).

use crate::check::Report;
use crate::dev::{errno, Dev};
use std::ffi::CString;

fn mount(src: &str, target: &str, fstype: &str) {
    let _ = std::fs::create_dir_all(target);
    let (s, t, f) =
        (CString::new(src).unwrap(), CString::new(target).unwrap(), CString::new(fstype).unwrap());
    // SAFETY: NUL-terminated strings; no data argument.
    if unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), 0, std::ptr::null()) } != 0 {
        println!("vmtest: mount {fstype} on {target}: errno {}", errno());
    }
}

pub fn setup() {
    mount("proc", "/proc", "proc");
    mount("sysfs", "/sys", "sysfs");
    mount("devtmpfs", "/dev", "devtmpfs");
    mount("tmpfs", "/dev/shm", "tmpfs");
    mount("tmpfs", "/tmp", "tmpfs");
    std::env::set_var("PATH", "/bin");
    std::env::set_var("HOME", "/tmp");
}

/// The module parameters on the kernel command line (`atomik.NAME=VALUE`), as `NAME=VALUE`
/// words for finit_module: the kernel applies `atomik.*` words only to built-in code, and
/// modprobe, which passes them on for a loadable module, is not in the VM. A later word for
/// the same name wins, as it does on the command line.
pub fn boot_params() -> String {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let mut params: Vec<(String, String)> = Vec::new();
    for word in cmdline.split_whitespace() {
        let Some((name, value)) = word.strip_prefix("atomik.").and_then(|w| w.split_once('=')) else {
            continue;
        };
        params.retain(|(n, _)| n != name);
        params.push((name.to_owned(), value.to_owned()));
    }
    params.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(" ")
}

pub fn insmod(path: &str, params: &str) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("open {path}: {e}"))?;
    let p = CString::new(params).unwrap();
    // SAFETY: finit_module(fd, params, flags) with a valid fd and NUL-terminated params.
    let r = unsafe {
        libc::syscall(libc::SYS_finit_module, std::os::fd::AsRawFd::as_raw_fd(&file), p.as_ptr(), 0)
    };
    if r != 0 {
        return Err(format!("finit_module {path} ({params}): errno {}", errno()));
    }
    // What a udev rule does on a server: let the test's second uid reach the device; the
    // banks' own modes decide the rest.
    std::fs::set_permissions("/dev/atomik", std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .map_err(|e| format!("chmod /dev/atomik: {e}"))
}

pub fn rmmod() -> i32 {
    let name = CString::new("atomik").unwrap();
    // SAFETY: delete_module(name, O_NONBLOCK) with a NUL-terminated name.
    let r = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
    if r == 0 {
        0
    } else {
        errno()
    }
}

/// Unloading is refused while a file or a mapping holds the module, and is clean afterwards
/// with banks still registered (they are freed with the module).
pub fn unload_suite(report: &mut Report) {
    report.run("unload refused while an fd is open, fine after", || {
        let d = ok!(Dev::open());
        let _ = d.destroy("unload-left");
        ok!(d.create("unload-left", 100, 0, 0o600, 0));
        ok!(d.attach("unload-left", 3));
        let m = ok!(d.map(4096 * 4, 0, libc::PROT_READ, libc::MAP_SHARED));
        let r = rmmod();
        ensure!(r == libc::EBUSY || r == libc::EAGAIN, "rmmod with an open fd: errno {r}");
        drop(d);
        let r = rmmod();
        ensure!(r == libc::EBUSY || r == libc::EAGAIN, "rmmod with a live mapping: errno {r}");
        drop(m);
        let r = rmmod();
        ensure!(r == 0, "rmmod after close: errno {r}");
        ensure!(!std::path::Path::new("/dev/atomik").exists(), "/dev/atomik still there");
        insmod("/atomik.ko", &boot_params())?;
        let d = ok!(Dev::open());
        ensure!(ok!(d.info()).bank_count == 0, "banks survived a reload");
        Ok(())
    });
}

pub fn poweroff() -> ! {
    // SAFETY: sync and reboot(2) as pid 1.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    std::process::exit(0)
}

/// Runs `f` in a forked child (after `setup` in the child, e.g. setuid); the child's failure
/// message comes back through a pipe.
pub fn in_child(
    setup: impl FnOnce() -> Result<(), String>,
    f: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) into a two-int array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: errno {}", errno()));
    }
    // SAFETY: fork(2); the child only runs the closures then _exit()s.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: errno {}", errno()));
    }
    if pid == 0 {
        let r = setup().and_then(|()| f());
        let msg = match &r {
            Ok(()) => String::new(),
            Err(e) => e.clone(),
        };
        // SAFETY: writes the message to the pipe and exits without running destructors twice.
        unsafe {
            libc::write(fds[1], msg.as_ptr() as *const _, msg.len());
            libc::_exit(if r.is_ok() { 0 } else { 1 });
        }
    }
    // SAFETY: closing our copy of the write end, reading the child's message, reaping it.
    unsafe { libc::close(fds[1]) };
    let mut buf = vec![0u8; 4096];
    let mut msg = Vec::new();
    loop {
        // SAFETY: reads into an owned buffer.
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr() as *mut _, buf.len()) };
        if n <= 0 {
            break;
        }
        msg.extend_from_slice(&buf[..n as usize]);
    }
    // SAFETY: closes the read end; waits for our own child.
    let mut status = 0;
    unsafe {
        libc::close(fds[0]);
        libc::waitpid(pid, &mut status, 0);
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if msg.is_empty() {
        Err(format!("child exited with status {status:#x}"))
    } else {
        Err(String::from_utf8_lossy(&msg).into_owned())
    }
}

/// Drops to uid/gid 1000 (no supplementary groups).
pub fn become_user() -> Result<(), String> {
    // SAFETY: plain credential syscalls in a child process.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(1000) != 0 || libc::setuid(1000) != 0 {
            return Err(format!("dropping to uid 1000: errno {}", errno()));
        }
    }
    Ok(())
}

/// Starts `/bin/atomikctl ARGS` as `uid` (root when None), with `env` added to this process's
/// environment less `ATOMIK_BACKEND`: the credentials are dropped in the forked child with
/// plain syscalls before `execve`; returns its pid and the read end of its stdout (`stream`
/// 1) or stderr (2).
pub fn spawn_ctl(
    uid: Option<u32>,
    args: &[&str],
    env: &[(&str, &str)],
    stream: i32,
) -> Result<(i32, std::fs::File), String> {
    use std::ffi::CString;
    use std::os::fd::FromRawFd;
    let path = CString::new("/bin/atomikctl").map_err(|e| e.to_string())?;
    let mut argv: Vec<CString> = vec![path.clone()];
    for a in args {
        argv.push(CString::new(*a).map_err(|e| e.to_string())?);
    }
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let vars = std::env::vars()
        .filter(|(k, _)| k != "ATOMIK_BACKEND" && !env.iter().any(|(e, _)| e == k))
        .chain(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let envs: Vec<CString> = vars
        .map(|(k, v)| CString::new(format!("{k}={v}")).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let mut envp: Vec<*const libc::c_char> = envs.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let mut p = [0i32; 2];
    // SAFETY: pipe(2) into a two-int array.
    if unsafe { libc::pipe(p.as_mut_ptr()) } != 0 {
        return Err("pipe failed".into());
    }
    // SAFETY: fork(2); the child only makes syscalls (dup2, credentials, execve) and _exit()s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see above; `ptrs` and `envp` are NULL-terminated arrays of C strings that
        // outlive execve.
        unsafe {
            libc::dup2(p[1], stream);
            libc::close(p[0]);
            if let Some(uid) = uid {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(uid) != 0
                    || libc::setuid(uid) != 0
                {
                    libc::_exit(126);
                }
            }
            libc::execve(path.as_ptr(), ptrs.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    // SAFETY: closes the write end in the parent; the read end becomes an owned File.
    unsafe { libc::close(p[1]) };
    if pid < 0 {
        return Err("fork failed".into());
    }
    // SAFETY: `p[0]` is an open fd owned by nothing else.
    Ok((pid, unsafe { std::fs::File::from_raw_fd(p[0]) }))
}

/// Waits for our child `pid`: its exit code, or None when a signal ended it.
pub fn reap(pid: i32) -> Option<i32> {
    let mut status = 0;
    // SAFETY: waits for our own child into a local int.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
}
