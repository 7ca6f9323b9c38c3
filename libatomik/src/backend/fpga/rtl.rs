//! The Verilator model of hw/rtl/atomik_top.v in this process (cargo feature `rtl-model`,
//! built by build.rs with the `cc` crate): the device the driver is tested against, and
//! [`serve`], which shares one model with other processes over a Unix socket
//! (`atomikctl rtl-model --socket PATH`, reached with `ATOMIK_FPGA=unix:PATH`).

use std::ffi::c_void;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::mmio::{wire, Mmio};
use crate::error::{Error, Result};

extern "C" {
    fn atomik_sim_new() -> *mut c_void;
    fn atomik_sim_free(sim: *mut c_void);
    fn atomik_sim_cycles(sim: *mut c_void) -> u64;
    fn atomik_sim_write(sim: *mut c_void, addr: u64, words: *const u64, n: u32) -> i32;
    fn atomik_sim_read(sim: *mut c_void, addr: u64, out: *mut u64, n: u32) -> i32;
}

/// Slots the model was verilated with (`ATOMIK_RTL_SLOTS` at build time, 256 by default).
pub const MODEL_SLOTS: &str = env!("ATOMIK_RTL_SLOTS");

struct Sim(*mut c_void);

// SAFETY: the model has no thread affinity; every use goes through the Mutex in RtlModel.
unsafe impl Send for Sim {}

impl Drop for Sim {
    fn drop(&mut self) {
        // SAFETY: self.0 came from atomik_sim_new and is freed once, here.
        unsafe { atomik_sim_free(self.0) }
    }
}

/// One simulated device, out of reset. Accesses are serialised, as on one bus.
pub struct RtlModel {
    sim: Mutex<Sim>,
    location: PathBuf,
}

impl RtlModel {
    /// A new model instance.
    pub fn new() -> Result<RtlModel> {
        // SAFETY: no preconditions; null means allocation failed.
        let p = unsafe { atomik_sim_new() };
        if p.is_null() {
            return Err(Error::io("rtl model", "rtl-model", std::io::Error::other("out of memory")));
        }
        Ok(RtlModel { sim: Mutex::new(Sim(p)), location: PathBuf::from("rtl-model (Verilator)") })
    }

    /// Clock cycles simulated so far.
    pub fn cycles(&self) -> u64 {
        let s = self.sim.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: s.0 is a live model, used under the lock.
        unsafe { atomik_sim_cycles(s.0) }
    }

    fn raw_read(&self, offset: u64, out: &mut [u64]) -> i32 {
        let Ok(n) = u32::try_from(out.len()) else { return -1 };
        let s = self.sim.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: out has n writable words; the model is live and used under the lock.
        unsafe { atomik_sim_read(s.0, offset, out.as_mut_ptr(), n) }
    }

    fn raw_write(&self, offset: u64, words: &[u64]) -> i32 {
        let Ok(n) = u32::try_from(words.len()) else { return -1 };
        let s = self.sim.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: words has n readable words; the model is live and used under the lock.
        unsafe { atomik_sim_write(s.0, offset, words.as_ptr(), n) }
    }

    fn status(&self, rc: i32, offset: u64) -> Result<()> {
        match rc {
            0 => Ok(()),
            2 => Err(Error::io(
                "mmio",
                &self.location,
                std::io::Error::other(format!("the device refused the access at {offset:#x}")),
            )),
            _ => Err(Error::io(
                "mmio",
                &self.location,
                std::io::Error::other(format!("bus timeout at {offset:#x}")),
            )),
        }
    }
}

impl Mmio for RtlModel {
    fn location(&self) -> &Path {
        &self.location
    }

    fn read_words(&self, offset: u64, out: &mut [u64]) -> Result<()> {
        self.status(self.raw_read(offset, out), offset)
    }

    fn write_words(&self, offset: u64, words: &[u64]) -> Result<()> {
        self.status(self.raw_write(offset, words), offset)
    }
}

fn wire_status(rc: i32) -> u8 {
    match rc {
        0 => wire::OK,
        2 => wire::REFUSED,
        _ => wire::FAILED,
    }
}

fn serve_conn(model: &RtlModel, mut s: UnixStream) -> std::io::Result<()> {
    loop {
        let mut h = [0u8; 16];
        match s.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let (op, offset) = (h[0], u64::from_le_bytes(h[8..16].try_into().expect("8 bytes")));
        let count = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes"));
        if count > wire::MAX_WORDS {
            return Err(std::io::Error::other(format!("request of {count} words")));
        }
        let mut words = vec![0u64; count as usize];
        let status = match op {
            wire::WRITE => {
                let mut buf = vec![0u8; 8 * words.len()];
                s.read_exact(&mut buf)?;
                for (w, b) in words.iter_mut().zip(buf.chunks_exact(8)) {
                    *w = u64::from_le_bytes(b.try_into().expect("8 bytes"));
                }
                let st = wire_status(model.raw_write(offset, &words));
                words.clear();
                st
            }
            wire::READ => wire_status(model.raw_read(offset, &mut words)),
            wire::CYCLES => {
                words.fill(model.cycles());
                wire::OK
            }
            _ => {
                words.clear();
                wire::FAILED
            }
        };
        let mut reply = vec![status, 0, 0, 0, 0, 0, 0, 0];
        words.iter().for_each(|w| reply.extend_from_slice(&w.to_le_bytes()));
        s.write_all(&reply)?;
    }
}

/// Serves one new model on a Unix socket at `path` until the process ends; each connection on
/// its own thread, accesses serialised as on one bus.
pub fn serve(path: &Path) -> Result<()> {
    let model = Arc::new(RtlModel::new()?);
    // Bound (and listening) under a temporary name, then renamed into place: a client that
    // sees the path can connect (bind makes the file before listen, which would refuse it).
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(|e| Error::io("bind", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))?;
    for conn in listener.incoming() {
        let s = conn.map_err(|e| Error::io("accept", path, e))?;
        let m = model.clone();
        std::thread::spawn(move || {
            if let Err(e) = serve_conn(&m, s) {
                eprintln!("rtl model: connection: {e}");
            }
        });
    }
    Ok(())
}
