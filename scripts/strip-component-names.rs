//! Removes the top-level `component-name` custom section from a WebAssembly component.
//!
//! `wasm-component-ld` writes the debug names of the component's instances and lowered
//! functions there (~12 KB of our ~320 KB); nothing reads them at run time (the core
//! module's own names are already stripped by the release profile). Every other section,
//! including the nested core modules, is copied byte for byte.
//!
//! Usage: `strip-component-names FILE` (rewrites FILE in place, atomically).

use std::{env, fs, process};

const PREAMBLE: [u8; 8] = *b"\0asm\x0d\x00\x01\x00";
const SECTION: &str = "component-name";

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

fn strip(input: &[u8]) -> Result<(Vec<u8>, usize), String> {
    if input.get(..8) != Some(&PREAMBLE[..]) {
        return Err("not a WebAssembly component (layer 1 preamble)".into());
    }
    let mut out = PREAMBLE.to_vec();
    let mut removed = 0;
    let mut at = 8;
    while at < input.len() {
        let start = at;
        let id = input[at];
        at += 1;
        let size = leb128(input, &mut at)?;
        let end = at.checked_add(size).filter(|&e| e <= input.len());
        let end = end.ok_or("section runs past the end")?;
        let is_names = id == 0 && {
            let mut name_at = at;
            let len = leb128(input, &mut name_at)?;
            input.get(name_at..name_at + len) == Some(SECTION.as_bytes())
        };
        if is_names {
            removed += end - start;
        } else {
            out.extend_from_slice(&input[start..end]);
        }
        at = end;
    }
    Ok((out, removed))
}

fn main() {
    let Some(path) = env::args().nth(1) else {
        eprintln!("usage: strip-component-names FILE");
        process::exit(2);
    };
    let result = fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| strip(&bytes))
        .and_then(|(out, removed)| {
            let tmp = format!("{path}.tmp");
            fs::write(&tmp, &out)
                .and_then(|()| fs::rename(&tmp, &path))
                .map_err(|e| e.to_string())?;
            Ok(removed)
        });
    match result {
        Ok(removed) => eprintln!("strip-component-names: {path}: removed {removed} bytes"),
        Err(e) => {
            eprintln!("strip-component-names: {path}: {e}");
            process::exit(1);
        }
    }
}
