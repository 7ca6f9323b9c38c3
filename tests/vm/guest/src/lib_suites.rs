//! The library's own test suite and atomikctl, run inside the VM against /dev/atomik.

use crate::check::Report;

pub fn run_library(report: &mut Report) {
    report.fail("library suite", "not built into this image".into());
}

pub fn run_atomikctl(report: &mut Report) {
    report.fail("atomikctl", "not built into this image".into());
}
