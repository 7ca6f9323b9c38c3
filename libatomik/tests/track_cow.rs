//! Copy-on-write sharing and breaks on a real fork.

mod track_support;

use atomik::track::cow::{cow_breaks, identical_copies, sample_anon};
use std::path::Path;
use track_support::{Child, Region};

fn proc_root() -> &'static Path {
    Path::new("/proc")
}

#[test]
fn fork_then_child_writes_counts_cow_breaks() {
    let _serial = track_support::serial();
    let region = Region::new(64, 500);
    let child = Child::fork(&region);
    let me = std::process::id() as i32;
    let in_region = |a: u64| a >= region.base && a < region.range().end;

    // Both processes also touch their stacks and heaps: look at the region only.
    let mut c0 = sample_anon(proc_root(), child.pid).unwrap();
    c0.shared.retain(|(a, _)| in_region(*a));
    assert_eq!(c0.shared.len(), 64, "every page of the region is shared after fork");
    let mut p0 = sample_anon(proc_root(), me).unwrap();
    p0.shared.retain(|(a, _)| in_region(*a));

    // 5 pages get new content, 3 get the content they already had: 8 copies.
    for p in 0..5 {
        child.fill(p, 0xf00 + p as u64);
    }
    for p in 10..13 {
        child.fill(p, 500 + p as u64);
    }
    let b = cow_breaks(proc_root(), &c0).unwrap();
    assert_eq!(b.became_exclusive, 8, "{b:?}");
    let pb = cow_breaks(proc_root(), &p0).unwrap();
    assert_eq!(pb.became_exclusive, 8, "the parent keeps the originals, now exclusive");

    match b.copied {
        None => println!("SKIP copy attribution: PFNs are hidden (needs CAP_SYS_ADMIN)"),
        Some(copied) => {
            assert_eq!(copied, 8, "the child made the copies");
            assert_eq!(pb.copied, Some(0), "the parent copied nothing");
            let same = identical_copies(proc_root(), child.pid, me, &b.copied_pages).unwrap();
            assert_eq!(same.compared, 8);
            assert_eq!(same.identical, 3, "3 writes rewrote the same content");
        }
    }
}

#[test]
fn reading_a_process_does_not_unshare_its_pages() {
    let _serial = track_support::serial();
    let region = Region::new(16, 1);
    let child = Child::fork(&region);
    let in_region = |a: u64| a >= region.base && a < region.range().end;
    let shared = || {
        let s = sample_anon(proc_root(), child.pid).unwrap();
        s.shared.iter().filter(|(a, _)| in_region(*a)).count()
    };
    assert_eq!(shared(), 16);
    // A tracker baseline, a check and a duplicate scan all read the child's pages.
    let mut t = atomik::track::region::Tracker::watch(
        child.pid,
        &[region.range()],
        atomik::track::region::TrackerOptions {
            detector: Some(atomik::track::region::Detector::FullRescan),
            ..Default::default()
        },
    )
    .unwrap();
    t.check().unwrap();
    assert_eq!(shared(), 16, "reading must not copy the target's shared pages");
}

/// The idle process of the next tests (this test binary run again with
/// `ATOMIK_IDLE_FORKER` set): 256 touched pages, `READY` on stdout; then one command a byte
/// on stdin, each answered with a line:
/// - `t`: writes 64 new pages and reads 8 others (zero-page mappings) of a reserved region,
///   `TOUCHED`;
/// - `f`: forks a child that stays (no exec), so its pages are shared copy-on-write,
///   `FORKED`;
/// - `d`: the same through a daemon's double fork: the child forks a grandchild that stays
///   and exits at once, so the grandchild's parent is no longer the helper, and the helper
///   reaps the child, `DAEMONIZED`;
/// - `z`: the same, but the helper ignores SIGCHLD meanwhile: the kernel reaps the child,
///   and the helper's count of its children's faults does not move, `DAEMONIZED`;
/// - `e`: ends the children and grandchildren made so far, `ENDED`.
///
/// At the end of stdin it ends them and exits.
#[test]
fn idle_forker() {
    if std::env::var_os("ATOMIK_IDLE_FORKER").is_none() {
        return;
    }
    let region = Region::new(256, 7);
    let say = |m: &[u8]| {
        // SAFETY: writes m.len() bytes from a live buffer to stdout.
        unsafe { libc::write(1, m.as_ptr().cast(), m.len()) };
    };
    let more = Region::reserved(4096);
    let mut touched = 0;
    // The children block reading the pipe until its write end, held here, is closed.
    let mut pipe: Option<[i32; 2]> = None;
    let mut children: Vec<i32> = Vec::new();
    let end = |pipe: &mut Option<[i32; 2]>, children: &mut Vec<i32>| {
        if let Some([r, w]) = pipe.take() {
            // SAFETY: closes the pipe's two ends, opened below and used by nothing else.
            unsafe { (libc::close(r), libc::close(w)) };
        }
        for c in children.drain(..) {
            // SAFETY: waits for a child of ours; the status is not needed.
            unsafe { libc::waitpid(c, std::ptr::null_mut(), 0) };
        }
    };
    let open = |pipe: &mut Option<[i32; 2]>| -> [i32; 2] {
        *pipe.get_or_insert_with(|| {
            let mut fds = [0i32; 2];
            // SAFETY: pipe writes two fds into a live array of two.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            fds
        })
    };
    // Forks a process that waits for the end of the pipe, then leaves.
    let stay = |[r, w]: [i32; 2]| -> i32 {
        // SAFETY: the child only closes, reads and leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let mut b = [0u8; 1];
            // SAFETY: as above; its copy of the write end is closed so that the read sees
            // the end once the helper closes its own.
            unsafe {
                libc::close(w);
                while libc::read(r, b.as_mut_ptr().cast(), 1) > 0 {}
                libc::_exit(0)
            }
        }
        pid
    };
    say(b"\nREADY\n");
    let mut line = [0u8; 1];
    // SAFETY: reads into a live one-byte buffer.
    while unsafe { libc::read(0, line.as_mut_ptr().cast(), 1) } == 1 {
        match line[0] {
            b't' => {
                for i in touched..touched + 64 {
                    more.fill(i, 0x7000 + i as u64);
                }
                for i in 2048 + touched / 8..2048 + touched / 8 + 8 {
                    // SAFETY: a page of the reserved region; reading it maps the zero page.
                    unsafe { std::ptr::read_volatile(more.page_addr(i) as *const u8) };
                }
                touched += 64;
                say(b"\nTOUCHED\n");
            }
            b'f' => {
                children.push(stay(open(&mut pipe)));
                say(b"\nFORKED\n");
            }
            b'd' | b'z' => {
                let fds = open(&mut pipe);
                let auto_reap = line[0] == b'z';
                if auto_reap {
                    // SAFETY: sets the SIGCHLD disposition; restored below.
                    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
                }
                // SAFETY: the child forks once and leaves with _exit.
                let middle = unsafe { libc::fork() };
                if middle == 0 {
                    stay(fds);
                    // SAFETY: as above.
                    unsafe { libc::_exit(0) };
                }
                if auto_reap {
                    // The kernel reaps it: wait until its pid is gone (at most 5 s).
                    for _ in 0..5000 {
                        // SAFETY: signal 0 only checks that the process exists.
                        if unsafe { libc::kill(middle, 0) } != 0 {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    // SAFETY: as above.
                    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
                } else {
                    // SAFETY: waits for the child just made.
                    unsafe { libc::waitpid(middle, std::ptr::null_mut(), 0) };
                }
                say(b"\nDAEMONIZED\n");
            }
            b'e' => {
                end(&mut pipe, &mut children);
                say(b"\nENDED\n");
            }
            _ => {}
        }
    }
    end(&mut pipe, &mut children);
    drop((region, more));
}

/// A running [`idle_forker`], ended (end of its stdin, then reaped) when dropped.
struct Forker {
    child: std::process::Child,
    out: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Forker {
    /// Starts one and waits until it holds its pages.
    fn spawn() -> Forker {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "idle_forker", "--nocapture", "--test-threads=1"])
            .env("ATOMIK_IDLE_FORKER", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut f = Forker { child, out };
        f.wait_for("READY");
        f
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn wait_for(&mut self, word: &str) {
        assert!(self.out.any(|l| l.unwrap() == word), "the helper did not say {word}");
    }

    /// Sends a command and waits for its answer.
    fn ask(&mut self, cmd: &[u8], answer: &str) {
        use std::io::Write;
        self.child.stdin.as_mut().unwrap().write_all(cmd).unwrap();
        self.wait_for(answer);
    }
}

impl Drop for Forker {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// A sample keeps an idle process's pagemap figures without reading its pagemap again, and
/// still sees the pages it shares as soon as it forks (a fork shares them without a fault
/// or an RSS change in the parent: only the fault its next write makes tells).
#[test]
fn an_idle_process_is_not_reread_until_it_forks() {
    use atomik::track::monitor::{Monitor, MonitorOptions, Snapshot};
    let mut p = Forker::spawn();
    let pid = p.pid();
    let mut m = Monitor::new(MonitorOptions { pids: Some(vec![pid]), ..MonitorOptions::default() });
    let shared = |s: &Snapshot| s.rows.iter().find(|r| r.cgroup == "/").and_then(|r| r.cow_shared_pages);
    let first = m.sample().unwrap();
    let idle = m.sample().unwrap();
    assert!(
        shared(&first).is_some_and(|n| n < 256),
        "an exec'd process shares nothing yet: {:?}",
        first.rows
    );
    assert_eq!(
        (idle.pagemaps_reused, shared(&idle)),
        (1, shared(&first)),
        "idle: its pagemap is not read again"
    );
    p.ask(b"f", "FORKED");
    let forked = m.sample().unwrap();
    drop(p);
    assert_eq!(forked.pagemaps_reused, 0, "a process that forked is read again");
    assert!(
        shared(&forked).is_some_and(|n| n >= 256),
        "its 256 pages are shared with its child: {:?}",
        forked.rows
    );
}

/// The COW pages each process of a snapshot shares.
fn shared_of(s: &atomik::track::monitor::Snapshot, pid: i32) -> u64 {
    let row = s.processes.iter().find(|r| r.pid == pid).expect("the process is in the snapshot");
    row.cow_shared_pages.expect("its pagemap was read")
}

/// A process that shared nothing at the previous sample and changed since is not read
/// again while no process created since shares its pages (processes made elsewhere on the
/// machine meanwhile may make a sample read it: one of 20 must not); it is read again as
/// soon as a child shares them, and also when the child is a daemon's grandchild whose
/// parent (the helper's child) exited.
#[test]
fn a_changed_process_is_not_read_until_a_new_process_shares_its_pages() {
    use atomik::track::monitor::{Monitor, MonitorOptions};
    let _serial = track_support::serial();
    // The grandchild is re-parented to this test process, which can be read (pid 1 may
    // not be: then the grandchild's sharers could not be counted for another reason).
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let mut p = Forker::spawn();
    let pid = p.pid();
    let mut m = Monitor::new(MonitorOptions { pids: Some(vec![pid]), ..MonitorOptions::default() });
    let base = shared_of(&m.sample().unwrap(), pid);
    assert!(base < 256, "an exec'd process shares next to nothing: {base}");
    let (mut skipped, mut touches) = (0, 0);
    while skipped == 0 && touches < 20 {
        p.ask(b"t", "TOUCHED");
        touches += 1;
        let s = m.sample().unwrap();
        assert_eq!(shared_of(&s, pid), base, "it forked nothing: it shares what it shared");
        assert_eq!(s.pagemaps_reused, 0, "it changed");
        skipped += s.pagemaps_known_exclusive;
    }
    assert_eq!(skipped, 1, "a changed process that shares nothing was read at every sample");
    let owned = 256 + 64 * touches;

    p.ask(b"f", "FORKED");
    let forked = m.sample().unwrap();
    assert_eq!(forked.pagemaps_known_exclusive, 0);
    assert!(shared_of(&forked, pid) >= owned, "its {owned} pages are shared with its child: {forked:?}");

    p.ask(b"e", "ENDED");
    p.ask(b"t", "TOUCHED");
    assert_eq!(shared_of(&m.sample().unwrap(), pid), base, "the child is gone");
    p.ask(b"t", "TOUCHED");
    m.sample().unwrap();

    // A double fork: the grandchild's parent is not the helper. Whether the helper reaped
    // the middle process (it is then the one to read) or the kernel did (then nothing
    // points at the helper but the map counts), it is read again.
    for (cmd, extra) in [(b"d", 128), (b"z", 256)] {
        p.ask(b"t", "TOUCHED");
        m.sample().unwrap();
        p.ask(cmd, "DAEMONIZED");
        let daemon = m.sample().unwrap();
        assert_eq!(daemon.pagemaps_known_exclusive, 0, "{}", cmd[0] as char);
        assert!(
            shared_of(&daemon, pid) >= owned + extra,
            "{}: its pages are shared with a grandchild it is not the parent of: {daemon:?}",
            cmd[0] as char
        );
        p.ask(b"e", "ENDED");
    }
}

/// With page frame numbers (CAP_SYS_ADMIN) the sharers of a new process's pages are
/// counted: a forked child, or a double fork's grandchild whose middle process the parent
/// reaped, sends the parent back to the full read and leaves another changed process unread
/// (one of 10 forks each, for the processes made elsewhere meanwhile).
#[test]
fn a_forked_child_holding_pages_sends_only_its_parent_back_to_the_full_read() {
    use atomik::track::monitor::{Monitor, MonitorOptions};
    let _serial = track_support::serial();
    let (mut p, mut q) = (Forker::spawn(), Forker::spawn());
    let (pp, qp) = (p.pid(), q.pid());
    let visible = sample_anon(proc_root(), pp).unwrap().pfn_visible;
    if !visible || atomik::track::pagemap::kpagecount(&[1]).is_none() {
        println!("SKIP: page frame numbers or /proc/kpagecount not readable (needs CAP_SYS_ADMIN)");
        return;
    }
    let mut m = Monitor::new(MonitorOptions { pids: Some(vec![pp, qp]), ..MonitorOptions::default() });
    let first = m.sample().unwrap();
    let q_base = shared_of(&first, qp);
    // A child, then a double fork whose middle process the parent reaps.
    for cmd in [b"f", b"d"] {
        let answer = if cmd == b"f" { "FORKED" } else { "DAEMONIZED" };
        let mut only_q = false;
        for _ in 0..10 {
            p.ask(b"t", "TOUCHED");
            q.ask(b"t", "TOUCHED");
            m.sample().unwrap();
            p.ask(cmd, answer);
            q.ask(b"t", "TOUCHED");
            let s = m.sample().unwrap();
            assert!(shared_of(&s, pp) >= 256, "the parent shares its pages with its child: {s:?}");
            assert_eq!(shared_of(&s, qp), q_base);
            p.ask(b"e", "ENDED");
            m.sample().unwrap();
            if s.pagemaps_known_exclusive == 1 {
                only_q = true;
                break;
            }
        }
        assert!(only_q, "{}: the other changed process was read every time", cmd[0] as char);
    }
}

/// `sample_anon` walks the page tables once per run of adjacent private anonymous mappings
/// and reads close spans together: the same sample as reading each mapping's populated
/// spans on their own (the way it was done first).
#[test]
fn one_walk_over_all_mappings_gives_the_per_mapping_sample() {
    use atomik::track::pagemap::Pagemap;
    use atomik::track::ranges::PAGE;
    use atomik::track::scan::{populated, scan_category, PAGE_IS_PFNZERO};
    let _serial = track_support::serial();
    let region = Region::new(300, 9);
    // A file mapping between anonymous ones, and holes in the region.
    let file = tempfile::tempfile().unwrap();
    file.set_len(16 * PAGE).unwrap();
    // SAFETY: a private read-only mapping of the temporary file; unmapped below.
    let fm = unsafe {
        use std::os::fd::AsRawFd;
        libc::mmap(
            std::ptr::null_mut(),
            16 * PAGE as usize,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(fm, libc::MAP_FAILED);
    // SAFETY: touching the mapping just made, read only.
    let _ = unsafe { std::ptr::read_volatile(fm as *const u8) };
    for p in (0..300).step_by(7) {
        // SAFETY: advice on pages of the region, which nothing else uses.
        unsafe { libc::madvise(region.page_addr(p) as *mut _, PAGE as usize, libc::MADV_DONTNEED) };
    }
    let child = Child::fork(&region);
    // The reference: each mapping's populated spans read on their own.
    let reference = || {
        let maps = atomik::track::maps::read_maps(proc_root(), child.pid).unwrap();
        let pm = Pagemap::open(child.pid).unwrap();
        let (mut present, mut exclusive, mut zero_pages, mut swapped, mut shared) = (0, 0, 0, 0, Vec::new());
        for m in maps.iter().filter(|m| m.is_private_anon()) {
            let (mut spans, mut zero, mut e) = (Vec::new(), Vec::new(), Vec::new());
            populated(&pm, m.range, &mut spans).unwrap();
            scan_category(&pm, m.range, PAGE_IS_PFNZERO, &mut zero).unwrap();
            for s in spans {
                pm.read(s, &mut e).unwrap();
                for (i, e) in e.iter().enumerate() {
                    let a = s.start + i as u64 * PAGE;
                    swapped += e.swapped() as u64;
                    if !e.anon_present() {
                        continue;
                    }
                    if zero.iter().any(|z| z.start <= a && a < z.end) {
                        zero_pages += 1;
                    } else if e.exclusive() {
                        (present, exclusive) = (present + 1, exclusive + 1);
                    } else {
                        present += 1;
                        shared.push((a, e.pfn().unwrap_or(0)));
                    }
                }
            }
        }
        ((present, exclusive, zero_pages, swapped), shared)
    };
    // The child settles after the fork (its stack pages become its own as it runs): compare
    // with a reference that is the same before and after the sample.
    let got = loop {
        let before = reference();
        let got = sample_anon(proc_root(), child.pid).unwrap();
        if reference() == before {
            break (got, before);
        }
    };
    let (got, ((present, exclusive, zero_pages, swapped), shared)) = got;
    // SAFETY: unmapping the file mapping made above.
    unsafe { libc::munmap(fm, 16 * PAGE as usize) };
    assert!(got.zero_page_known);
    assert_eq!(
        (got.present, got.exclusive, got.zero_pages, got.swapped),
        (present, exclusive, zero_pages, swapped)
    );
    assert_eq!(got.shared, shared);
    assert!(got.shared.len() >= 250, "the forked region is shared: {}", got.shared.len());
}
