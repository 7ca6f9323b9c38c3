//! The Verilator model of hw/rtl/atomik_top.v in this process (cargo feature `rtl-model`,
//! built by build.rs with the `cc` crate): the device the driver is tested against.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::mmio::Mmio;
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
        let n = u32::try_from(out.len()).map_err(|_| self.status(-1, offset).unwrap_err())?;
        let s = self.sim.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: out has n writable words; the model is live and used under the lock.
        let rc = unsafe { atomik_sim_read(s.0, offset, out.as_mut_ptr(), n) };
        self.status(rc, offset)
    }

    fn write_words(&self, offset: u64, words: &[u64]) -> Result<()> {
        let n = u32::try_from(words.len()).map_err(|_| self.status(-1, offset).unwrap_err())?;
        let s = self.sim.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: words has n readable words; the model is live and used under the lock.
        let rc = unsafe { atomik_sim_write(s.0, offset, words.as_ptr(), n) };
        self.status(rc, offset)
    }
}
