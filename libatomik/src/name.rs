//! Bank names: validated once, then carried as a NUL-padded ABI field.

use crate::abi::NAME_LEN;
use crate::error::{Error, Result};

/// A valid bank name: 1 to 63 bytes of `[A-Za-z0-9._-]`, not starting with `.`.
/// The rule keeps names safe as file names and as C strings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BankName(String);

impl BankName {
    /// Checks `name` against the rule.
    pub fn new(name: &str) -> Result<BankName> {
        let ok = !name.is_empty()
            && name.len() < NAME_LEN
            && !name.starts_with('.')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(BankName(name.to_owned()))
        } else {
            Err(Error::BadName { name: name.to_owned() })
        }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// NUL-padded bytes for ABI structs.
    pub fn to_abi(&self) -> [u8; NAME_LEN] {
        let mut out = [0u8; NAME_LEN];
        out[..self.0.len()].copy_from_slice(self.0.as_bytes());
        out
    }
}

impl std::fmt::Display for BankName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_safe_names_and_rejects_the_rest() {
        for good in ["a", "bank-1", "x.y_z", &"n".repeat(63)] {
            assert_eq!(BankName::new(good).unwrap().as_str(), good);
        }
        for bad in ["", ".hidden", "a/b", "..", "sp ace", "é", &"n".repeat(64), "nul\0"] {
            assert!(matches!(BankName::new(bad), Err(Error::BadName { .. })), "{bad:?}");
        }
    }

    #[test]
    fn abi_form_is_nul_padded() {
        let n = BankName::new("abc").unwrap().to_abi();
        assert_eq!(&n[..4], b"abc\0");
        assert!(n[3..].iter().all(|&b| b == 0));
    }
}
