//! include/atomik_capi.h is what cbindgen makes of src/lib.rs, byte for byte: a change to the
//! C ABI that is not in the committed header fails here. `ATOMIK_BLESS=1` rewrites the header.

use std::path::Path;

#[test]
fn the_committed_header_is_cbindgens_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut made = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen could not generate the header")
        .write(&mut made);
    let path = dir.join("include/atomik_capi.h");
    if std::env::var_os("ATOMIK_BLESS").is_some() {
        std::fs::write(&path, &made).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == made,
        "{} is not cbindgen's output for src/lib.rs; regenerate it with ATOMIK_BLESS=1 cargo test -p atomik-capi --test header",
        path.display()
    );
}
