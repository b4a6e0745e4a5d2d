//! The last two steps of the component build, in one pass over its top-level sections:
//!
//! 1. binaryen's `wasm-opt -Oz` on the largest core module (the program; the others are
//!    a few hundred bytes of glue). rustc and `wasm-component-ld` leave code that
//!    `wasm-opt` shrinks by about a sixth (376 → 316 KB for ours) without making it
//!    slower. `wasm-opt` reads core modules, not components, so the module is taken out,
//!    optimised and put back in its section. Imports and exports keep their names, so
//!    the component's types and instantiations, which refer to them, stay valid. The
//!    features are those rustc enables for `wasm32-wasip2`; `wasm-opt` refuses a module
//!    that uses any other, so a new one fails the build here instead of slipping through.
//! 2. The `component-name` custom section goes: `wasm-component-ld` writes the debug
//!    names of the component's instances and lowered functions there (~12 KB); nothing
//!    reads them at run time.
//!
//! Every other section is copied byte for byte.
//!
//! Usage: `finish-component FILE` (rewrites FILE in place, atomically; needs `wasm-opt`
//! on the PATH).

use std::{env, fs, process};

const PREAMBLE: [u8; 8] = *b"\0asm\x0d\x00\x01\x00";
const CUSTOM: u8 = 0;
const CORE_MODULE: u8 = 1;
const NAMES: &str = "component-name";
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

/// One top-level section: its id, and where its content starts and ends.
struct Section {
    id: u8,
    start: usize,
    content: usize,
    end: usize,
}

fn sections(input: &[u8]) -> Result<Vec<Section>, String> {
    if input.get(..8) != Some(&PREAMBLE[..]) {
        return Err("not a WebAssembly component (layer 1 preamble)".into());
    }
    let mut out = Vec::new();
    let mut at = 8;
    while at < input.len() {
        let start = at;
        let id = input[at];
        at += 1;
        let size = leb128(input, &mut at)?;
        let end = at.checked_add(size).filter(|&e| e <= input.len());
        let end = end.ok_or("section runs past the end")?;
        out.push(Section {
            id,
            start,
            content: at,
            end,
        });
        at = end;
    }
    Ok(out)
}

fn is_names(input: &[u8], s: &Section) -> Result<bool, String> {
    if s.id != CUSTOM {
        return Ok(false);
    }
    let mut at = s.content;
    let len = leb128(input, &mut at)?;
    Ok(input.get(at..at + len) == Some(NAMES.as_bytes()))
}

/// `wasm-opt -Oz` on one core module, through files next to `path`.
fn wasm_opt(path: &str, module: &[u8]) -> Result<Vec<u8>, String> {
    let (before, after) = (format!("{path}.core.wasm"), format!("{path}.core.opt.wasm"));
    fs::write(&before, module).map_err(|e| e.to_string())?;
    let status = process::Command::new("wasm-opt")
        .arg("-Oz")
        .args(FEATURES)
        .arg(&before)
        .arg("-o")
        .arg(&after)
        .status()
        .map_err(|e| format!("wasm-opt: {e}"))?;
    let optimised = fs::read(&after).map_err(|e| e.to_string());
    let _ = fs::remove_file(&before);
    let _ = fs::remove_file(&after);
    if !status.success() {
        return Err(format!("wasm-opt failed ({status})"));
    }
    optimised
}

fn finish(path: &str) -> Result<String, String> {
    let input = fs::read(path).map_err(|e| e.to_string())?;
    let sections = sections(&input)?;
    let program = sections
        .iter()
        .filter(|s| s.id == CORE_MODULE)
        .max_by_key(|s| s.end - s.content)
        .ok_or("no core module in the component")?;
    let optimised = wasm_opt(path, &input[program.content..program.end])?;
    let mut out = PREAMBLE.to_vec();
    let mut names = 0;
    for s in &sections {
        if std::ptr::eq(s, program) {
            out.push(CORE_MODULE);
            write_leb128(&mut out, optimised.len());
            out.extend_from_slice(&optimised);
        } else if is_names(&input, s)? {
            names += s.end - s.start;
        } else {
            out.extend_from_slice(&input[s.start..s.end]);
        }
    }
    let tmp = format!("{path}.tmp");
    fs::write(&tmp, &out)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "core module {} -> {} bytes (wasm-opt -Oz), {names} bytes of names removed",
        program.end - program.content,
        optimised.len()
    ))
}

fn main() {
    let Some(path) = env::args().nth(1) else {
        eprintln!("usage: finish-component FILE");
        process::exit(2);
    };
    match finish(&path) {
        Ok(done) => eprintln!("finish-component: {path}: {done}"),
        Err(e) => {
            eprintln!("finish-component: {path}: {e}");
            process::exit(1);
        }
    }
}
