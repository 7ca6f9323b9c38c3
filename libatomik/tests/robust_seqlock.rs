//! No slot can be wedged by a dead process: a writer killed inside LOAD/SWAP's critical
//! section leaves the slot's sequence word locked with its pid, and the next reader or
//! writer releases it. A live holder still excludes everyone.
//!
//! The locked word is planted by a real process that is then SIGKILLed, exactly what a
//! `kill -9` inside the critical section leaves behind (the window itself is a handful of
//! instructions, too short to hit on purpose).

mod common;

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use atomik::abi::SEQ_COUNTER_MASK;
use atomik::{CreateOptions, Op};
use common::TempBank;

/// A real process that does nothing until it is killed (forked: the VM's initramfs has no
/// `sleep` to run).
struct Holder(nix::unistd::Pid);

impl Holder {
    fn id(&self) -> u32 {
        self.0.as_raw() as u32
    }

    fn kill(&mut self) -> nix::Result<()> {
        nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGKILL)
    }

    fn wait(&mut self) -> nix::Result<nix::sys::wait::WaitStatus> {
        nix::sys::wait::waitpid(self.0, None)
    }
}

fn holder() -> Holder {
    // SAFETY: the child only calls pause(), which is async-signal-safe, until SIGKILL.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => loop {
            // SAFETY: pause() has no preconditions.
            unsafe { libc::pause() };
        },
        nix::unistd::ForkResult::Parent { child } => Holder(child),
    }
}

/// Plants "locked by `pid`" in slot `i`'s sequence word, as the lock protocol writes it.
fn plant_lock(b: &TempBank, i: u64, pid: u32) -> u64 {
    let seq = b.memory().sequence(i);
    let s = seq.load(Ordering::Relaxed);
    assert_eq!(s & 1, 0, "slot starts unlocked");
    let locked = (u64::from(pid) << 32) | ((s + 1) & SEQ_COUNTER_MASK);
    seq.store(locked, Ordering::Release);
    locked
}

#[test]
fn a_dead_holder_is_released_by_the_next_reader_and_writer() {
    if std::env::var("ATOMIK_BACKEND").as_deref() == Ok("device") {
        return; // planted through the mapping; the kernel's own holders are never stolen
    }
    let b = TempBank::new("robust", CreateOptions::new(4).op(Op::Add));
    b.load(1, 40).unwrap();
    b.accum(1, 2).unwrap();
    let mut h = holder();
    plant_lock(&b, 1, h.id());
    h.kill().unwrap();
    h.wait().unwrap();
    // READ must not spin forever, and must see the slot as it was.
    let (tx, rx) = mpsc::channel();
    let name = b.name().to_owned();
    std::thread::spawn(move || {
        let bank = atomik::Bank::open(&name).unwrap();
        tx.send(bank.read(1).unwrap()).unwrap();
    });
    let v = rx.recv_timeout(Duration::from_secs(20)).expect("READ wedged by a dead holder");
    assert_eq!(v, 42);
    assert_eq!(b.memory().sequence(1).load(Ordering::Relaxed) & 1, 0, "released");
    // Writers too: a planted dead lock on another slot, then SWAP.
    let mut h = holder();
    plant_lock(&b, 2, h.id());
    h.kill().unwrap();
    h.wait().unwrap();
    b.accum(2, 5).unwrap();
    assert_eq!(b.swap(2).unwrap(), 5);
    assert_eq!(b.read(2).unwrap(), 5);
}

#[test]
fn a_live_holder_still_excludes_readers_until_it_dies() {
    if std::env::var("ATOMIK_BACKEND").as_deref() == Ok("device") {
        return;
    }
    let b = TempBank::new("robust-live", CreateOptions::new(2));
    b.accum(0, 7).unwrap();
    let mut h = holder();
    plant_lock(&b, 0, h.id());
    let (tx, rx) = mpsc::channel();
    let name = b.name().to_owned();
    std::thread::spawn(move || {
        let bank = atomik::Bank::open(&name).unwrap();
        tx.send(bank.read(0).unwrap()).unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "READ went through a lock whose holder is alive"
    );
    h.kill().unwrap();
    h.wait().unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)).expect("released after death"), 7);
}
