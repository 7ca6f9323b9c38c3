//! `atomikctl status`: which backend serves banks, and why.

use anyhow::Result;
use serde_json::json;

use atomik::abi;
use atomik::backend;

use crate::output::emit;

pub fn status(json: bool) -> Result<()> {
    let device_present = std::path::Path::new(abi::DEVICE_PATH).exists();
    let forced = std::env::var(backend::ENV_BACKEND).ok().filter(|v| !v.is_empty());
    let sel = backend::select()?;
    let kind = sel.backend.kind();
    let banks = sel.backend.list()?.len();
    emit(
        json,
        json!({
            "backend": kind.name(),
            "reason": sel.reason,
            "forced": forced,
            "device_present": device_present,
            "abi_version": abi::ABI_VERSION,
            "banks": banks,
        }),
        || {
            format!(
                "backend   {kind}\nreason    {}\ndevice    {} {}\nabi       {}\nbanks     {banks}",
                sel.reason,
                abi::DEVICE_PATH,
                if device_present { "present" } else { "absent" },
                abi::ABI_VERSION
            )
        },
    );
    Ok(())
}
