//! Bank commands: create, list, info, rm, load, accum, read, swap.

use std::io::BufRead;

use anyhow::{Context, Result};
use serde_json::json;

use atomik::{Bank, CreateOptions, Op};

use crate::cli::{BankCmd, CreateArgs};
use crate::numbers::{hex, parse_mode, parse_u64};
use crate::output::{emit, info_json};
use crate::BadInput;

pub fn bank(cmd: BankCmd, json: bool) -> Result<()> {
    match cmd {
        BankCmd::Create(args) => create(args, json),
        BankCmd::List => list(json),
        BankCmd::Info { name } => info(&name, json),
        BankCmd::Rm { name } => {
            Bank::destroy(&name)?;
            emit(json, json!({ "removed": name }), || format!("removed bank {name}"));
            Ok(())
        }
    }
}

fn create(a: CreateArgs, json: bool) -> Result<()> {
    let slots = parse_u64(&a.slots, "slot count")?;
    let op: Op = a.op.parse().map_err(BadInput)?;
    let mode = parse_mode(&a.mode)?;
    let shards = u32::try_from(parse_u64(&a.shards, "shard count")?)
        .map_err(|_| BadInput(format!("shard count {} is too large", a.shards)))?;
    let bank =
        Bank::create(&a.name, CreateOptions::new(slots).op(op).mode(mode).shards(shards).fpga(a.fpga))?;
    let i = bank.info();
    emit(json, info_json(i), || {
        format!(
            "created bank {} ({} slots, {}, mode {:04o}) on {}",
            i.name,
            i.slots,
            i.op,
            i.mode,
            bank.backend()
        )
    });
    Ok(())
}

fn list(json: bool) -> Result<()> {
    let banks = Bank::list()?;
    if json {
        let v: Vec<_> = banks
            .iter()
            .map(|r| match r {
                Ok(i) => info_json(i),
                Err(e) => json!({ "error": e.to_string() }),
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    println!("{:<24} {:>12} {:>4} {:>6} {:>12}", "NAME", "SLOTS", "OP", "MODE", "BYTES");
    for r in banks {
        match r {
            Ok(i) => println!(
                "{:<24} {:>12} {:>4} {:>6} {:>12}",
                i.name,
                i.slots,
                i.op,
                format!("{:04o}", i.mode),
                i.bytes
            ),
            Err(e) => println!("# unreadable: {e}"),
        }
    }
    Ok(())
}

fn info(name: &str, json: bool) -> Result<()> {
    let bank = Bank::open(name)?;
    let i = bank.info();
    let mut dirty = 0;
    for s in 0..bank.slots() {
        dirty += usize::from(!bank.is_clean(s)?);
    }
    let mut v = info_json(i);
    v["backend"] = json!(bank.backend().name());
    v["writable"] = json!(bank.writable());
    v["dirty_slots"] = json!(dirty);
    // A bank on an FPGA has no mapped header, so it is never replicated.
    let (origin, incarnation) = bank.mapped().map_or((0, 0), |m| (m.origin(), m.incarnation()));
    v["replicated"] = json!(incarnation != 0);
    v["origin"] = json!(format!("{origin:016x}"));
    v["incarnation"] = json!(format!("{incarnation:016x}"));
    let replicated = if incarnation == 0 {
        "no".to_owned()
    } else {
        format!("yes: replica {origin:016x}, incarnation {incarnation:016x} (LOAD and SWAP refused)")
    };
    emit(json, v, || {
        format!(
            "bank {}\n  slots     {}\n  op        {}\n  shards    {}\n  mode      {:04o} (uid {}, gid {})\n  bytes     {}\n  location  {}\n  backend   {}\n  dirty     {} slots with a non-identity accumulator\n  replicated {}",
            i.name, i.slots, i.op, i.shards, i.mode, i.uid, i.gid, i.bytes, i.location.display(), bank.backend(), dirty, replicated
        )
    });
    Ok(())
}

pub fn load(name: &str, slot: &str, value: &str, json: bool) -> Result<()> {
    let (slot, value) = (parse_u64(slot, "slot")?, parse_u64(value, "value")?);
    Bank::open(name)?.load(slot, value)?;
    emit(json, json!({ "bank": name, "slot": slot, "loaded": value }), || hex(value));
    Ok(())
}

pub fn accum(name: &str, slot: &str, delta: Option<&str>, json: bool) -> Result<()> {
    if slot == "-" {
        if let Some(d) = delta {
            return Err(
                BadInput(format!("unexpected argument {d:?} after '-' (deltas come from stdin)")).into()
            );
        }
        let ops = read_batch(std::io::stdin().lock())?;
        Bank::open(name)?.accum_batch(&ops)?;
        emit(json, json!({ "bank": name, "accumulated": ops.len() }), || {
            format!("accumulated {} deltas", ops.len())
        });
        return Ok(());
    }
    let delta = delta
        .ok_or_else(|| BadInput("missing DELTA (or use '-' as SLOT to read a batch from stdin)".into()))?;
    let (slot, delta) = (parse_u64(slot, "slot")?, parse_u64(delta, "delta")?);
    Bank::open(name)?.accum(slot, delta)?;
    emit(json, json!({ "bank": name, "slot": slot, "delta": delta }), String::new);
    Ok(())
}

/// `SLOT DELTA` lines (blank lines and `#` comments skipped); the first bad line fails all.
fn read_batch(input: impl BufRead) -> Result<Vec<(u64, u64)>> {
    let mut ops = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line.context("reading stdin")?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let mut parts = t.split_whitespace();
        let (Some(s), Some(d), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(BadInput(format!("stdin line {}: expected \"SLOT DELTA\", got {t:?}", n + 1)).into());
        };
        let at = |e: BadInput| BadInput(format!("stdin line {}: {}", n + 1, e.0));
        ops.push((parse_u64(s, "slot").map_err(at)?, parse_u64(d, "delta").map_err(at)?));
    }
    Ok(ops)
}

pub fn read(name: &str, slot: Option<&str>, all: bool, json: bool) -> Result<()> {
    let bank = Bank::open(name)?;
    if all {
        let values = bank.try_read_all()?;
        emit(json, json!({ "bank": name, "values": values }), || {
            values.iter().enumerate().map(|(i, v)| format!("{i} {}", hex(*v))).collect::<Vec<_>>().join("\n")
        });
        return Ok(());
    }
    let slot = slot.ok_or_else(|| BadInput("give a SLOT or --all".into()))?;
    let slot = parse_u64(slot, "slot")?;
    let v = bank.read(slot)?;
    emit(json, json!({ "bank": name, "slot": slot, "value": v }), || hex(v));
    Ok(())
}

pub fn swap(name: &str, slot: &str, set: Option<&str>, json: bool) -> Result<()> {
    let slot = parse_u64(slot, "slot")?;
    let set = set.map(|v| parse_u64(v, "reference")).transpose()?;
    let bank = Bank::open(name)?;
    let v = match set {
        Some(r) => bank.swap_set(slot, r)?,
        None => bank.swap(slot)?,
    };
    let mut out = json!({ "bank": name, "slot": slot, "value": v });
    if let Some(r) = set {
        out["reference"] = json!(r);
    }
    emit(json, out, || hex(v));
    Ok(())
}
