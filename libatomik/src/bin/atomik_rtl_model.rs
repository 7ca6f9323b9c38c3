//! `atomik-rtl-model --socket PATH`: serves one Verilator model of hw/rtl on a Unix socket, so
//! separate processes (atomikctl, tests) share one simulated device: `ATOMIK_FPGA=unix:PATH`.
//! Runs until killed; each connection is served on its own thread, accesses serialised.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;

use atomik::backend::fpga::mmio::wire;
use atomik::backend::fpga::rtl::RtlModel;
use atomik::backend::fpga::Mmio;

fn serve(model: &RtlModel, mut s: UnixStream) -> std::io::Result<()> {
    loop {
        let mut h = [0u8; 16];
        match s.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let op = h[0];
        let count = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes"));
        let offset = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
        if count > wire::MAX_WORDS {
            return Err(std::io::Error::other(format!("request of {count} words")));
        }
        let status = |r: atomik::Result<()>| match r {
            Ok(()) => wire::OK,
            Err(e) if e.to_string().contains("refused") => wire::REFUSED,
            Err(_) => wire::FAILED,
        };
        let mut words = vec![0u64; count as usize];
        let st = match op {
            wire::WRITE => {
                let mut buf = vec![0u8; 8 * count as usize];
                s.read_exact(&mut buf)?;
                for (i, w) in words.iter_mut().enumerate() {
                    *w = u64::from_le_bytes(buf[8 * i..8 * i + 8].try_into().expect("8 bytes"));
                }
                let st = status(model.write_words(offset, &words));
                words.clear();
                st
            }
            wire::READ => status(model.read_words(offset, &mut words)),
            wire::CYCLES => {
                words.iter_mut().for_each(|w| *w = model.cycles());
                wire::OK
            }
            _ => {
                words.clear();
                wire::FAILED
            }
        };
        let mut reply = vec![st, 0, 0, 0, 0, 0, 0, 0];
        words.iter().for_each(|w| reply.extend_from_slice(&w.to_le_bytes()));
        s.write_all(&reply)?;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = match args.as_slice() {
        [_, flag, p] if flag == "--socket" => p.clone(),
        _ => {
            eprintln!("usage: atomik-rtl-model --socket PATH");
            std::process::exit(2);
        }
    };
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap_or_else(|e| {
        eprintln!("atomik-rtl-model: bind {path}: {e}");
        std::process::exit(1);
    });
    let model = Arc::new(RtlModel::new().unwrap_or_else(|e| {
        eprintln!("atomik-rtl-model: {e}");
        std::process::exit(1);
    }));
    eprintln!("atomik-rtl-model: {} slots, serving {path}", atomik::backend::fpga::rtl::MODEL_SLOTS);
    for conn in listener.incoming() {
        match conn {
            Ok(s) => {
                let m = model.clone();
                std::thread::spawn(move || {
                    if let Err(e) = serve(&m, s) {
                        eprintln!("atomik-rtl-model: connection: {e}");
                    }
                });
            }
            Err(e) => eprintln!("atomik-rtl-model: accept: {e}"),
        }
    }
}
