//! `atomikctl gen-docs DIR` (hidden): the man pages and shell completions the Debian package
//! installs, generated from the command definition itself (clap_mangen, clap_complete) so that
//! they cannot drift from `--help`.

use crate::cli::Cli;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::Path;

/// Writes DIR/man/atomikctl.1 (and one page per subcommand, atomikctl-bank.1, …) and
/// DIR/completions/{atomikctl.bash,_atomikctl,atomikctl.fish}.
pub fn generate(dir: &Path) -> Result<()> {
    let man = dir.join("man");
    let comp = dir.join("completions");
    for d in [&man, &comp] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd.clone(), &man)
        .with_context(|| format!("writing man pages to {}", man.display()))?;
    for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "atomikctl", &comp)
            .with_context(|| format!("writing {shell} completions to {}", comp.display()))?;
    }
    Ok(())
}
