//! REGION_COW and REGION_WATCH(_COW) fuzzed against a model, as root and as uid 1000: the
//! fuzzer watches its own pages, which a forked sharer keeps shared; it writes pages with new
//! or the same bytes, replaces the sharer (everything shared again), and sends REGION_COW
//! with random ids, flags, bit buffers (null, short, unmapped, kernel, straddling into a
//! PROT_NONE page, read-only) and requests in read-only pages. Each call must give exactly
//! the errno the request deserves, each success exactly the model's figures and per-page bits,
//! and a failed call must leave the previous sample (the model commits only on success).

use crate::check::Report;
use crate::dev::Dev;
use crate::fuzz::Rng;
use crate::region::{content, Anon};
use crate::system::{become_user, in_child};
use atomik::abi::*;

const PAGES: u64 = 16;
const PAGE: u64 = 4096;

/// What the kernel should report, page by page.
#[derive(Clone, Copy, Default)]
struct PageModel {
    /// Mapped by the fuzzer and the sharer.
    shared: bool,
    /// Copied by a write since the last successful sample.
    copied: bool,
    /// Shared at the last successful sample.
    was_shared: bool,
    content: u64,
    content_then: u64,
}

/// A forked process that only waits (until killed), keeping every page of the fuzzer shared.
/// Killed rather than told to go: a pipe would be inherited by the next sharer and never close.
struct Sharer {
    pid: i32,
}

impl Sharer {
    fn fork() -> Result<Sharer, String> {
        // SAFETY: fork(2); the child only sleeps until it is killed.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            loop {
                // SAFETY: waits for a signal; SIGKILL ends the process.
                unsafe { libc::pause() };
            }
        }
        if pid < 0 {
            return Err("fork failed".into());
        }
        Ok(Sharer { pid })
    }
}

impl Drop for Sharer {
    fn drop(&mut self) {
        // SAFETY: kills and reaps our own child; its address space is gone once waitpid returns.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// A read-write page followed by a PROT_NONE one, and a read-only page.
struct Buffers {
    rw: Anon,
    ro: Anon,
}

fn fuzz(seed: u64, calls: u32) -> Result<(), String> {
    let d = ok!(Dev::open());
    let mut r = Rng(seed);
    let m = ok!(Anon::new(PAGES));
    let mut model = [PageModel::default(); PAGES as usize];
    for (i, p) in model.iter_mut().enumerate() {
        p.content = i as u64 + 1;
        m.write(i as u64, &content(p.content));
    }
    let mut sharer = Some(Sharer::fork()?);
    // Replaced sharers live until the next successful sample: the pages shared at a sample
    // stay allocated until the next one, so no frame is freed and reused at the same address
    // (which reads as the same page: the limit REGION_COW documents).
    let mut retired: Vec<Sharer> = Vec::new();
    for p in model.iter_mut() {
        p.shared = true;
    }
    let w = ok!(crate::cow::watch_cow(&d, 0, m.addr, PAGES));
    let plain = ok!(crate::region::watch(&d, 0, m.addr, PAGES * PAGE));
    for p in model.iter_mut() {
        (p.was_shared, p.content_then) = (p.shared, p.content);
    }
    let bufs = Buffers { rw: ok!(Anon::new(2)), ro: ok!(Anon::new(1)) };
    ok!(bufs.rw.protect(1, libc::PROT_NONE));
    ok!(bufs.ro.protect(0, libc::PROT_READ));
    let (mut successes, mut breaks) = (0u32, 0u64);
    for call in 0..calls {
        match r.below(100) {
            0..=29 => {
                let i = r.below(PAGES) as usize;
                let p = &mut model[i];
                if r.below(2) == 0 {
                    p.content = 10_000 + r.below(1 << 40);
                    m.write(i as u64, &content(p.content));
                } else {
                    m.write(i as u64, &m.read(i as u64));
                }
                if p.shared {
                    (p.shared, p.copied) = (false, true);
                }
            }
            30..=32 => {
                // The new sharer first: every page stays mapped twice.
                let next = Sharer::fork()?;
                retired.extend(sharer.replace(next));
                for p in model.iter_mut() {
                    p.shared = true;
                }
            }
            33..=37 => {
                let flags = r.pick(&[0, 1, 1, 2, 3, 1 << 31]);
                let mut req =
                    RegionWatch { pid: 0, flags, start: m.addr, len: PAGES * PAGE, ..Default::default() };
                let got = d.raw(IOCTL_REGION_WATCH, &mut req as *mut _ as usize);
                let want = if flags & !REGION_WATCH_COW != 0 { Err(libc::EINVAL) } else { Ok(0) };
                ensure!(
                    got == want,
                    "call {call}: REGION_WATCH flags {flags:#x}: got {got:?}, want {want:?}"
                );
                if got.is_ok() {
                    if flags == REGION_WATCH_COW {
                        // A fresh record: no breaks, and what is shared now.
                        let (c, _) = ok!(crate::cow::cow(&d, req.id, PAGES));
                        let shared = model.iter().filter(|p| p.shared).count() as u64;
                        ensure!((c.shared, c.breaks) == (shared, 0), "call {call}: fresh COW region {c:?}");
                    }
                    ok!(crate::region::by_id(&d, IOCTL_REGION_UNWATCH, req.id));
                }
            }
            _ => {
                let (c, rc) = random_cow(&mut r, &d, &bufs, w.id, plain.id);
                let want = c.expected;
                ensure!(rc == want, "call {call}: REGION_COW {:?}: got {rc:?}, want {want:?}", c.req);
                if rc.is_err() {
                    continue;
                }
                successes += 1;
                let reply = c.reply.ok_or("no reply")?;
                let broke = |p: &PageModel| p.was_shared && p.copied && !p.shared;
                let shared = model.iter().filter(|p| p.shared).count() as u64;
                let brk = model.iter().filter(|p| broke(p)).count() as u64;
                let same = model.iter().filter(|p| broke(p) && p.content == p.content_then).count() as u64;
                ensure!(
                    (reply.pages, reply.anon, reply.shared, reply.breaks, reply.identical)
                        == (PAGES, PAGES, shared, brk, same),
                    "call {call}: got {reply:?}, model shared {shared} breaks {brk} identical {same}"
                );
                if let Some(bits) = c.bits {
                    for (i, p) in model.iter().enumerate() {
                        let mut b = COW_PAGE_ANON;
                        if p.shared {
                            b |= COW_PAGE_SHARED;
                        }
                        if broke(p) {
                            b |= COW_PAGE_BROKE;
                            if p.content == p.content_then {
                                b |= COW_PAGE_IDENTICAL;
                            }
                        }
                        ensure!(bits[i] == b, "call {call}: page {i} bits {:#x}, model {b:#x}", bits[i]);
                    }
                }
                breaks += brk;
                retired.clear();
                for p in model.iter_mut() {
                    (p.was_shared, p.content_then, p.copied) = (p.shared, p.content, false);
                }
            }
        }
    }
    println!("fuzz_cow seed {seed:#x}: {calls} calls, {successes} samples checked against the model, {breaks} breaks");
    ensure!(successes > calls / 10 && breaks > 0, "too few checked samples: {successes}, {breaks} breaks");
    Ok(())
}

/// One random REGION_COW: the request, the errno it deserves, and what came back.
struct CowCall {
    req: RegionCow,
    expected: Result<i32, i32>,
    reply: Option<RegionCow>,
    bits: Option<Vec<u8>>,
}

fn random_cow(r: &mut Rng, d: &Dev, b: &Buffers, cow_id: u32, plain_id: u32) -> (CowCall, Result<i32, i32>) {
    let id = match r.below(10) {
        0 => plain_id,
        1 => r.pick(&[0, u32::MAX, cow_id + plain_id + 7]),
        _ => cow_id,
    };
    let flags = if r.below(12) == 0 { r.pick(&[1, 2, 1 << 31]) } else { 0 };
    let rw = b.rw.addr;
    let mut bits = vec![0xeeu8; PAGES as usize];
    // (address, whether the kernel can write `PAGES` bytes there)
    let (page_bits, writable) = match r.below(8) {
        0 | 1 => (0, true),
        2 => (8, false),
        3 => (0xffff_8000_0000_0000, false),
        4 => (rw + PAGE - PAGES / 2, false), // runs into the PROT_NONE page
        5 => (b.ro.addr, false),
        _ => (bits.as_mut_ptr() as u64, true),
    };
    let page_bits_len = match r.below(6) {
        0 => PAGES - 1,
        1 => r.pick(&[0, u64::MAX]),
        _ => PAGES,
    };
    let req = RegionCow { id, flags, page_bits, page_bits_len, ..Default::default() };
    let read_only = r.below(8) == 0;
    let expected = if flags != 0 || id != cow_id || (page_bits != 0 && page_bits_len < PAGES) {
        Err(libc::EINVAL)
    } else if !writable || read_only {
        Err(libc::EFAULT)
    } else {
        Ok(0)
    };
    let (rc, reply) = if read_only {
        // SAFETY: the read-only page is ours; made writable for the store, then read-only again.
        unsafe {
            libc::mprotect(b.ro.addr as *mut _, PAGE as usize, libc::PROT_READ | libc::PROT_WRITE);
            std::ptr::write(b.ro.addr as *mut RegionCow, req);
            libc::mprotect(b.ro.addr as *mut _, PAGE as usize, libc::PROT_READ);
        }
        (d.raw(IOCTL_REGION_COW, b.ro.addr as usize), None)
    } else {
        let mut req = req;
        let rc = d.raw(IOCTL_REGION_COW, &mut req as *mut _ as usize);
        (rc, Some(req))
    };
    let bits = (page_bits == bits.as_ptr() as u64).then_some(bits);
    (CowCall { req, expected, reply, bits }, rc)
}

pub fn run(report: &mut Report) {
    report.run(
        "fuzz: 3,000 REGION_COW/REGION_WATCH calls as root + 2,000 as uid 1000 against a COW model",
        || {
            in_child(|| Ok(()), || fuzz(0x5eed_c0c0_0000_0001, 3_000))?;
            in_child(become_user, || fuzz(0x5eed_c0c0_0000_0002, 2_000))
        },
    );
}
