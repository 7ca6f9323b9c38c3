// SPDX-License-Identifier: GPL-2.0
//! Limits set as module parameters, read once per request.

use crate::abi;

/// The limits in force (module parameters, clamped to what the ABI allows).
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    /// Banks one uid may own.
    pub(crate) banks_per_user: u32,
    /// Slots in one bank.
    pub(crate) slots: u64,
    /// Bytes of bank memory in all banks.
    pub(crate) total_bytes: u64,
    /// Bytes of bank memory of one uid's banks (CAP_SYS_RESOURCE of the opener exempts).
    pub(crate) user_bytes: u64,
}

impl Limits {
    pub(crate) fn get() -> Limits {
        Limits {
            banks_per_user: *crate::module_parameters::max_banks_per_user.value_ref(),
            slots: (*crate::module_parameters::max_slots.value_ref()).min(abi::MAX_SLOTS),
            total_bytes: *crate::module_parameters::max_total_bytes.value_ref(),
            user_bytes: *crate::module_parameters::max_user_bytes.value_ref(),
        }
    }
}
