//! Runs binaryen's `wasm-opt -Oz` on the core module inside a WebAssembly component.
//!
//! rustc and `wasm-component-ld` leave code that `wasm-opt` shrinks by about a sixth
//! (376 → 316 KB for ours) without making it slower. `wasm-opt` reads core modules, not
//! components, so this takes the component's largest core module (the program; the
//! others are a few hundred bytes of glue), optimises it, and puts it back in the same
//! place. Imports and exports keep their names, so the component's types and
//! instantiations, which refer to them, stay valid. Every other section is copied byte
//! for byte.
//!
//! The features are those rustc enables for `wasm32-wasip2`; `wasm-opt` refuses a module
//! that uses any other, so a new one fails the build here instead of slipping through.
//!
//! Usage: `optimize-component FILE` (rewrites FILE in place, atomically; needs
//! `wasm-opt` on the PATH).

use std::{env, fs, process};

const PREAMBLE: [u8; 8] = *b"\0asm\x0d\x00\x01\x00";
const CORE_MODULE: u8 = 1;
const FEATURES: [&str; 6] = [
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-multivalue",
    "--enable-reference-types",
];

fn leb128(bytes: &[u8], at: &mut usize) -> Result<usize, String> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*at).ok_or("truncated LEB128")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return usize::try_from(value).map_err(|e| e.to_string());
        }
    }
    Err("LEB128 too long".into())
}

fn write_leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The largest top-level core module section: (section start, content start, end).
fn largest_core_module(input: &[u8]) -> Result<(usize, usize, usize), String> {
    if input.get(..8) != Some(&PREAMBLE[..]) {
        return Err("not a WebAssembly component (layer 1 preamble)".into());
    }
    let mut best: Option<(usize, usize, usize)> = None;
    let mut at = 8;
    while at < input.len() {
        let start = at;
        let id = input[at];
        at += 1;
        let size = leb128(input, &mut at)?;
        let end = at.checked_add(size).filter(|&e| e <= input.len());
        let end = end.ok_or("section runs past the end")?;
        if id == CORE_MODULE && best.is_none_or(|(_, s, e)| e - s < size) {
            best = Some((start, at, end));
        }
        at = end;
    }
    best.ok_or_else(|| "no core module in the component".into())
}

fn optimize(path: &str) -> Result<(usize, usize), String> {
    let input = fs::read(path).map_err(|e| e.to_string())?;
    let (start, content, end) = largest_core_module(&input)?;
    let (before_path, after_path) = (format!("{path}.core.wasm"), format!("{path}.core.opt.wasm"));
    fs::write(&before_path, &input[content..end]).map_err(|e| e.to_string())?;
    let status = process::Command::new("wasm-opt")
        .arg("-Oz")
        .args(FEATURES)
        .arg(&before_path)
        .arg("-o")
        .arg(&after_path)
        .status()
        .map_err(|e| format!("wasm-opt: {e}"))?;
    if !status.success() {
        return Err(format!("wasm-opt failed ({status})"));
    }
    let core = fs::read(&after_path).map_err(|e| e.to_string())?;
    let _ = fs::remove_file(&before_path);
    let _ = fs::remove_file(&after_path);
    let mut out = input[..start].to_vec();
    out.push(CORE_MODULE);
    write_leb128(&mut out, core.len());
    out.extend_from_slice(&core);
    out.extend_from_slice(&input[end..]);
    let tmp = format!("{path}.tmp");
    fs::write(&tmp, &out)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| e.to_string())?;
    Ok((end - content, core.len()))
}

fn main() {
    let Some(path) = env::args().nth(1) else {
        eprintln!("usage: optimize-component FILE");
        process::exit(2);
    };
    match optimize(&path) {
        Ok((before, after)) => {
            eprintln!("optimize-component: {path}: core module {before} -> {after} bytes")
        }
        Err(e) => {
            eprintln!("optimize-component: {path}: {e}");
            process::exit(1);
        }
    }
}
