//! Printing results as text or JSON.

use serde_json::{json, Value};

use atomik::BankInfo;

/// Prints `value` as JSON when `json`, else the text (nothing when it is empty).
pub fn emit(json: bool, value: Value, text: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        let t = text();
        if !t.is_empty() {
            println!("{t}");
        }
    }
}

/// A bank description as JSON.
pub fn info_json(i: &BankInfo) -> Value {
    json!({
        "name": i.name,
        "slots": i.slots,
        "op": i.op.name(),
        "shards": i.shards,
        "mode": format!("{:04o}", i.mode),
        "uid": i.uid,
        "gid": i.gid,
        "bytes": i.bytes,
        "location": i.location,
    })
}
