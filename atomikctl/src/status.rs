//! `atomikctl status`: which backend serves banks, and why; for the userspace default, the
//! bank directory's owner and mode and whether it is trusted.

use anyhow::Result;
use serde_json::{json, Value};

use atomik::abi;
use atomik::backend::{self, soft::SoftBackend, BackendKind};

use crate::output::emit;

pub fn status(json: bool) -> Result<()> {
    let device_present = std::path::Path::new(abi::DEVICE_PATH).exists();
    let forced = std::env::var(backend::ENV_BACKEND).ok().filter(|v| !v.is_empty());
    let sel = backend::select()?;
    let kind = sel.backend.kind();
    // An untrusted directory is reported, not a reason to fail: status says what to fix.
    let banks = sel.backend.list().map(|l| l.len());
    let dir = (kind == BackendKind::Soft).then(|| SoftBackend::from_env().dir_report());
    // Which engine `top` and `report` use for their COW copy columns.
    let cow = atomik::track::kernel_cow::caller_engine();
    let dir_json = dir.as_ref().map(|d| {
        json!({
            "path": d.path,
            "exists": d.exists,
            "uid": d.uid,
            "owner": d.owner,
            "mode": d.mode.map(|m| format!("{m:04o}")),
            "trusted": d.trusted,
            "problem": d.problem,
        })
    });
    emit(
        json,
        json!({
            "backend": kind.name(),
            "reason": sel.reason,
            "forced": forced,
            "device_present": device_present,
            "abi_version": abi::ABI_VERSION,
            "banks": banks.as_ref().ok(),
            "banks_error": banks.as_ref().err().map(|e| e.to_string()),
            "directory": dir_json.unwrap_or(Value::Null),
            "cow_engine": cow.name(),
            "cow_engine_reason": cow.note(),
        }),
        || {
            let mut t = format!(
                "backend   {kind}\nreason    {}\ndevice    {} {}\nabi       {}\nbanks     {}",
                sel.reason,
                abi::DEVICE_PATH,
                if device_present { "present" } else { "absent" },
                abi::ABI_VERSION,
                match &banks {
                    Ok(n) => n.to_string(),
                    Err(_) if dir.as_ref().is_some_and(|d| d.problem.is_some()) => {
                        "unknown (see problem)".to_owned()
                    }
                    Err(e) => format!("unknown: {e}"),
                }
            );
            t.push_str(&format!("\ncow       {} ({})", cow.name(), cow.note()));
            if let Some(d) = &dir {
                t.push_str(&format!("\ndirectory {}", d.path.display()));
                match (d.exists, &d.owner, d.mode) {
                    (true, Some(owner), Some(mode)) => {
                        t.push_str(&format!("\nowner     {owner}\nmode      {mode:04o}"))
                    }
                    _ => t.push_str(" (absent: made on the first bank create)"),
                }
                t.push_str(&format!("\ntrusted   {}", if d.trusted { "yes" } else { "no" }));
                if let Some(p) = &d.problem {
                    t.push_str(&format!("\nproblem   {p}"));
                }
            }
            t
        },
    );
    Ok(())
}
