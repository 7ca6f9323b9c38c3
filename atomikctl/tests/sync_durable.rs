//! Durable replication, one deterministic test per failure an outside fault-injection run
//! found (issue "Durable replication"): real `atomikctl sync` processes over loopback TCP, a
//! ledger of every acknowledged ACCUM, and the final state of every replica compared with it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use atomik::Op;

mod sync_support;
use sync_support::node::{join, op_name, serve, Ledger, Node};
use sync_support::{bank, free_port, shm};

/// Failure 1: SIGTERM, then the bank disappears (a reboot empties /dev/shm): the daemon
/// rebuilds it from its replica instead of importing "0 − state" and zeroing everyone.
#[test]
fn a_reboot_after_a_clean_stop_rebuilds_the_bank_and_zeroes_nothing() {
    for op in [Op::Add, Op::Xor] {
        let tmp = tempfile::tempdir().unwrap();
        let addr = free_port();
        let (s, a) = (format!("r1s{}", op_name(op)), format!("r1a{}", op_name(op)));
        let _srv = serve(&s, op, &addr, &tmp.path().join("s"));
        let mut cli = join(&a, op, &addr, &tmp.path().join("a"));
        let mut l = Ledger::new(op, 64);
        l.produce(&a, 300);
        l.produce(&s, 300);
        l.wait(&[&s, &a]);
        cli.stop();
        std::fs::remove_file(shm().join(&a)).unwrap();
        cli.restart();
        l.produce(&s, 50);
        l.wait(&[&s, &a]);
        assert_ne!(l.want, vec![op.identity(); 64]);
    }
}

/// Failure 2: repeated clean stops of one replica while the others keep producing: nothing
/// the others wrote is erased (the old daemon counted remote deltas logged after its final
/// checkpoint as negative local changes).
#[test]
fn clean_stops_of_one_replica_never_erase_the_others_deltas() {
    let op = Op::Add;
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_port();
    let _srv = serve("r2s", op, &addr, &tmp.path().join("s"));
    let mut a = join("r2a", op, &addr, &tmp.path().join("a"));
    let _b = join("r2b", op, &addr, &tmp.path().join("b"));
    let mut l = Ledger::new(op, 64);
    for _ in 0..12 {
        l.produce("r2b", 40);
        l.produce("r2s", 40);
        std::thread::sleep(Duration::from_millis(30));
        a.stop();
        l.produce("r2a", 10); // while its daemon is down
        a.restart();
        a.wait_up();
    }
    l.wait(&["r2s", "r2a", "r2b"]);
}

/// Failure 3: `kill -9`, ACCUMs while the daemon is down, restart: every one of them stays
/// (the old daemon LOADed every slot from its replica, clearing the accumulators).
#[test]
fn accums_made_while_the_daemon_was_killed_survive_its_restart() {
    for op in [Op::Add, Op::Xor] {
        let tmp = tempfile::tempdir().unwrap();
        let addr = free_port();
        let (s, a) = (format!("r3s{}", op_name(op)), format!("r3a{}", op_name(op)));
        let _srv = serve(&s, op, &addr, &tmp.path().join("s"));
        let mut cli = join(&a, op, &addr, &tmp.path().join("a"));
        let mut l = Ledger::new(op, 64);
        for _ in 0..5 {
            l.produce(&a, 60);
            cli.kill9();
            l.produce(&a, 60);
            l.produce(&s, 20);
            cli.restart();
        }
        l.wait(&[&s, &a]);
    }
}

/// Failure 4: `kill -9` in the middle of the restart's recovery (with the references half
/// rewritten) leaves no slot wedged and loses nothing: every later start completes.
#[test]
fn kill_9_during_recovery_wedges_nothing_and_loses_nothing() {
    let op = Op::Add;
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_port();
    let _srv = serve("r4s", op, &addr, &tmp.path().join("s"));
    let mut cli = join("r4a", op, &addr, &tmp.path().join("a"));
    let mut l = Ledger::new(op, 64);
    l.produce("r4a", 100);
    l.produce("r4s", 100);
    l.wait(&["r4s", "r4a"]);
    for point in ["binding-taken-half", "binding-ref-half", "take-before-log", "join-bank-half"] {
        cli.kill9();
        l.produce("r4a", 30);
        let args: Vec<&str> = cli.args.iter().map(String::as_str).collect();
        let mut crashing = Node::start(&args, &tmp.path().join("a"), &[("ATOMIK_SYNC_CRASH_AT", point)]);
        l.produce("r4s", 30); // gives the join points something to land on
        let deadline = Instant::now() + Duration::from_secs(60);
        let st = loop {
            if let Some(st) = crashing.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "{point}: the armed daemon never reached its crash point");
            l.produce("r4s", 1);
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!st.success(), "{point}: the armed daemon was expected to die");
        cli.restart();
        l.produce("r4a", 30);
    }
    l.wait(&["r4s", "r4a"]);
}

/// Failure 5: a SIGSTOPped client must not freeze the hub for everyone: while it is stopped
/// (and its socket buffers full), the other replicas keep converging.
#[test]
fn a_stopped_peer_does_not_stall_the_others() {
    let op = Op::Add;
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_port();
    let wide = "16384";
    let start = |b: &str, role: &[&str], d: &str| {
        let mut args = vec![role[0], "--bank", b, "--slots", wide, "--op", "add"];
        args.extend_from_slice(&role[1..]);
        Node::start(&args, &tmp.path().join(d), &[])
    };
    let _srv = start("r5s", &["serve", "--listen", &addr], "s");
    let _a = start("r5a", &["join", "--peer", &addr], "a");
    let stopped = start("r5c", &["join", "--peer", &addr], "c");
    let mut l = Ledger::new(op, 16384);
    l.produce("r5a", 10);
    l.wait(&["r5s", "r5a", "r5c"]);
    stopped.signal(libc::SIGSTOP);
    // Enough traffic to fill the stopped peer's socket buffers many times over: every slot
    // changes in every round, so each delta is ~100 KiB.
    let a = bank("r5a");
    for round in 0..40u64 {
        for i in 0..16384u64 {
            a.accum(i, round + 1).unwrap();
            l.want[i as usize] += round + 1;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    l.wait(&["r5s", "r5a"]);
    stopped.signal(libc::SIGCONT);
    l.wait(&["r5s", "r5a", "r5c"]);
}

/// Failure 6: the replica directory is lost while the bank survives: the daemon refuses,
/// naming the recovery command; after `sync recover`, nothing is doubled and the ACCUMs made
/// while it was down are kept.
#[test]
fn a_lost_directory_is_refused_then_recovered_without_doubling() {
    for op in [Op::Add, Op::Xor] {
        let tmp = tempfile::tempdir().unwrap();
        let addr = free_port();
        let (s, a) = (format!("r6s{}", op_name(op)), format!("r6a{}", op_name(op)));
        let adir = tmp.path().join("a");
        let _srv = serve(&s, op, &addr, &tmp.path().join("s"));
        let mut cli = join(&a, op, &addr, &adir);
        let mut l = Ledger::new(op, 64);
        l.produce(&a, 200);
        l.wait(&[&s, &a]);
        cli.stop();
        l.produce(&a, 40);
        std::fs::remove_dir_all(&adir).unwrap();
        cli.restart();
        let out = std::mem::replace(&mut cli.child, Command::new("true").spawn().unwrap()).wait_with_output();
        let out = out.unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a daemon without its directory must refuse");
        assert!(err.contains("atomikctl sync recover"), "the refusal must name the recovery: {err}");
        let st = Command::new(env!("CARGO_BIN_EXE_atomikctl"))
            .env("ATOMIK_SHM_DIR", shm())
            .args(["sync", "recover", "--bank", &a, "--data"])
            .arg(&adir)
            .status()
            .unwrap();
        assert!(st.success());
        l.produce(&a, 20);
        cli.restart();
        l.wait(&[&s, &a]);
    }
}

/// Failure 7 (TCP): before authentication a connection can make the server allocate no big
/// buffer, and the number of connections is capped; the cluster keeps working meanwhile.
#[test]
fn unauthenticated_connections_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_port();
    let _srv = Node::start(
        &["serve", "--bank", "r7s", "--slots", "64", "--op", "add", "--listen", &addr, "--max-conns", "2"],
        &tmp.path().join("s"),
        &[],
    );
    let _a = join("r7a", Op::Add, &addr, &tmp.path().join("a"));
    let mut l = Ledger::new(Op::Add, 64);
    l.produce("r7a", 20);
    l.wait(&["r7s", "r7a"]);
    // A record announcing 64 MiB before any HELLO: refused at once, nothing allocated.
    let mut big = TcpStream::connect(&addr).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut hello = [0u8; 4096];
    let _ = big.write_all(&(64u32 << 20).to_le_bytes());
    let n = read_until_closed(&mut big, &mut hello);
    assert!(n.is_some(), "a 64 MiB pre-authentication record did not get the connection closed");
    // Idle connections: the connected client is one, one more fits, the next is closed at
    // accept.
    let idle = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut over = TcpStream::connect(&addr).unwrap();
    over.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert!(read_until_closed(&mut over, &mut hello).is_some(), "the connection cap was not applied");
    drop(idle);
    l.produce("r7a", 20);
    l.wait(&["r7s", "r7a"]);
}

/// Reads until the peer closes (Some(bytes read)) or the read times out (None).
fn read_until_closed(s: &mut TcpStream, buf: &mut [u8]) -> Option<usize> {
    let mut total = 0;
    loop {
        match s.read(buf) {
            Ok(0) => return Some(total),
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(total),
            Err(_) => return None,
        }
    }
}
