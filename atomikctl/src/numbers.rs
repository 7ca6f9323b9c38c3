//! Number parsing and printing for the CLI: decimal or 0x-hex in, hex out.

use crate::BadInput;

/// Parses a u64 written in decimal or `0x` hex (underscores allowed). `what` names the
/// argument in the error.
pub fn parse_u64(s: &str, what: &str) -> Result<u64, BadInput> {
    let t = s.trim().replace('_', "");
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>(),
    };
    r.map_err(|_| BadInput(format!("malformed {what} {s:?}: expected a decimal or 0x-hex number below 2^64")))
}

/// Parses octal permission bits such as `0660` or `660`.
pub fn parse_mode(s: &str) -> Result<u32, BadInput> {
    let t = s.trim().trim_start_matches("0o");
    u32::from_str_radix(t, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| BadInput(format!("malformed mode {s:?}: expected octal permission bits like 0660")))
}

/// A u64 as the CLI prints it.
pub fn hex(v: u64) -> String {
    format!("{v:#018x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_in_both_bases_and_reject_junk() {
        assert_eq!(parse_u64("42", "x").unwrap(), 42);
        assert_eq!(parse_u64("0xCAFE_babe", "x").unwrap(), 0xcafe_babe);
        assert_eq!(parse_u64("18446744073709551615", "x").unwrap(), u64::MAX);
        for bad in ["", "-1", "0x", "12z", "18446744073709551616", "0x1_0000_0000_0000_0000"] {
            assert!(parse_u64(bad, "value").unwrap_err().0.contains("malformed value"), "{bad}");
        }
        assert_eq!(parse_mode("0660").unwrap(), 0o660);
        assert!(parse_mode("0999").is_err());
        assert!(parse_mode("7777").is_err());
    }
}
