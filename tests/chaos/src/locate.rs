//! Finding the binaries under test: `atomikctl` from this workspace, and `nats-server`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

/// `$ATOMIKCTL`, else the newer of `target/{debug,release}/atomikctl` (under
/// `$CARGO_TARGET_DIR` when set, else the workspace's `target`). The newer one, because
/// testing a stale build of the other profile is the quiet way to test the wrong daemon.
pub fn atomikctl() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ATOMIKCTL") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("ATOMIKCTL={} is not a file", p.display());
        }
        return Ok(p);
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => workspace_root().join("target"),
    };
    let candidates = ["debug", "release"].map(|p| target.join(p).join("atomikctl"));
    candidates.iter().filter_map(|p| Some((modified(p)?, p.clone()))).max().map(|(_, p)| p).with_context(
        || format!("no atomikctl in {} (cargo build -p atomikctl, or set ATOMIKCTL=PATH)", target.display()),
    )
}

fn modified(p: &Path) -> Option<SystemTime> {
    p.metadata().ok().filter(|m| m.is_file())?.modified().ok()
}

/// The workspace root: two levels above this crate (`tests/chaos`).
pub fn workspace_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    p.canonicalize().unwrap_or(p)
}

/// `$ATOMIK_NATS_SERVER`, else `nats-server` on PATH or in the sbin directories Debian's
/// package installs it to (not on a normal user's PATH).
pub fn nats_server() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ATOMIK_NATS_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    let path = std::env::join_paths(dirs).context("joining PATH")?;
    which::which_in("nats-server", Some(path), ".")
        .context("nats-server not found (apt-get install nats-server, or ATOMIK_NATS_SERVER=PATH)")
}
