//! A tiny test runner: each test is a closure returning `Result<(), String>`; panics are not
//! used (the binary is built with panic=abort and runs as pid 1).

#[derive(Default)]
pub struct Report {
    pub passed: u32,
    pub failed: u32,
}

impl Report {
    pub fn run(&mut self, name: &str, f: impl FnOnce() -> Result<(), String>) {
        let start = std::time::Instant::now();
        match f() {
            Ok(()) => {
                self.passed += 1;
                println!("ok   {name} ({} ms)", start.elapsed().as_millis());
            }
            Err(e) => self.fail(name, e),
        }
    }

    pub fn fail(&mut self, name: &str, why: String) {
        self.failed += 1;
        println!("FAIL {name}: {why}");
    }
}

/// Fails the test with a message unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!("{} (line {})", format!($($fmt)+), line!()));
        }
    };
}

/// Unwraps a `Result<T, errno>` or fails the test naming the call and the errno.
macro_rules! ok {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(errno) => {
                return Err(format!(
                    "{} failed: {} (line {})",
                    stringify!($e),
                    crate::check::errname(errno),
                    line!()
                ))
            }
        }
    };
}

/// Asserts that a `Result<T, errno>` is exactly `Err(want)`.
macro_rules! fails_with {
    ($e:expr, $want:expr) => {
        match $e {
            Err(errno) if errno == $want => {}
            Err(errno) => {
                return Err(format!(
                    "{}: want {}, got {} (line {})",
                    stringify!($e),
                    crate::check::errname($want),
                    crate::check::errname(errno),
                    line!()
                ))
            }
            Ok(_) => {
                return Err(format!(
                    "{}: want {}, got success (line {})",
                    stringify!($e),
                    crate::check::errname($want),
                    line!()
                ))
            }
        }
    };
}

pub fn errname(e: i32) -> String {
    let n = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::EBADFD => "EBADFD",
        libc::EAGAIN => "EAGAIN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        _ => return format!("errno {e}"),
    };
    n.to_owned()
}
