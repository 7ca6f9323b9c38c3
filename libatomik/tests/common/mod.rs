//! Helpers shared by the integration tests: unique bank names removed on drop.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use atomik::{Bank, CreateOptions};

/// A bank name no other test (or test process) uses.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("test-{tag}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `opts`, with the slots on the FPGA when `ATOMIK_TEST_FPGA=1` (the VM's fpga suite runs the
/// tests so against `/dev/atomik`'s banks on the device).
pub fn test_options(opts: CreateOptions) -> CreateOptions {
    opts.fpga(std::env::var("ATOMIK_TEST_FPGA").is_ok_and(|v| v == "1"))
}

/// A bank destroyed when the guard drops.
pub struct TempBank {
    pub bank: Bank,
}

impl TempBank {
    pub fn new(tag: &str, opts: CreateOptions) -> TempBank {
        let name = unique_name(tag);
        let bank = Bank::create(&name, test_options(opts)).unwrap_or_else(|e| panic!("create {name}: {e}"));
        TempBank { bank }
    }
}

impl std::ops::Deref for TempBank {
    type Target = Bank;
    fn deref(&self) -> &Bank {
        &self.bank
    }
}

impl Drop for TempBank {
    fn drop(&mut self) {
        let _ = Bank::destroy(self.bank.name());
    }
}
