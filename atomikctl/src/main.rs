//! `atomikctl`: the command line for atomik banks.
//!
//! Exit codes: 0 success; 1 operational failure (I/O, a damaged bank, a backend that is not
//! available); 2 bad input (malformed number, unknown bank, slot out of range, name taken,
//! bad name or parameters), nothing changed; 3 permission denied.

mod bank_cmd;
mod bench;
mod cli;
mod converge;
mod docs;
mod numbers;
mod output;
mod status;
mod sync;
mod track;
#[cfg(feature = "vfio-user")]
mod vfio_server;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// Bad input found by the CLI itself (exit 2).
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// The exit code for an error: see the module documentation.
fn exit_code(e: &anyhow::Error) -> u8 {
    use atomik::Error as E;
    if e.downcast_ref::<BadInput>().is_some() {
        return 2;
    }
    if let Some(code) = track::exit_code(e) {
        return code;
    }
    match e.downcast_ref::<E>() {
        Some(
            E::BadName { .. }
            | E::NotFound { .. }
            | E::Exists { .. }
            | E::SlotOutOfRange { .. }
            | E::BadParams { .. }
            | E::BadBackend { .. }
            | E::ReadOnly { .. }
            | E::Replicated { .. },
        ) => 2,
        Some(E::PermissionDenied { .. } | E::DeviceDenied { .. }) => 3,
        _ => 1,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let result = match cli.command {
        Command::Bank(cmd) => bank_cmd::bank(cmd, json),
        Command::Load { name, slot, value } => bank_cmd::load(&name, &slot, &value, json),
        Command::Accum { name, slot, delta } => bank_cmd::accum(&name, &slot, delta.as_deref(), json),
        Command::Read { name, slot, all } => bank_cmd::read(&name, slot.as_deref(), all, json),
        Command::Swap { name, slot, set } => bank_cmd::swap(&name, &slot, set.as_deref(), json),
        Command::Status => status::status(json),
        #[cfg(feature = "rtl-model")]
        Command::RtlModel { socket } => atomik::backend::fpga::rtl::serve(&socket).map_err(Into::into),
        #[cfg(feature = "vfio-user")]
        Command::VfioUser { socket } => vfio_server::serve(&socket),
        Command::Bench(args) => bench::run(args, json),
        Command::Sync(cmd) => sync::run(&cmd, json),
        Command::Watch(args) => track::filter(|| track::watch::run(args, json)),
        Command::Top(args) => track::filter(|| track::top::run(args, json)),
        Command::Report(args) => track::filter(|| track::report::run(args, json)),
        Command::Exporter(args) => track::exporter::run(args),
        Command::GenDocs { dir } => docs::generate(&dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            if json {
                println!("{}", serde_json::json!({ "error": format!("{e:#}"), "exit_code": code }));
            }
            eprintln!("atomikctl: {e:#}");
            ExitCode::from(code)
        }
    }
}
