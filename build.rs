//! Link settings for the wasm component (nothing for native builds), and the console's
//! files compressed for the component to serve.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    console_assets();
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        // A 128 KiB shadow stack instead of 1 MiB: only address-taken locals live there
        // (the deepest input, 128 levels of JSON, uses a fraction), and with the stack
        // first in memory the data and heap start near address 0, so a host that keeps
        // the first few hundred KiB of a reused memory slot resident serves the whole
        // request from resident pages.
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=131072");
        // Start with 1 MiB of memory so that a typical request never grows it: growing
        // costs the host an mprotect now and another (with a TLB flush) when the slot is
        // reset for the next instance.
        println!("cargo:rustc-link-arg-cdylib=--initial-memory=1048576");
    }
}

/// The console's files (`console/`), gzip-compressed at build time into `OUT_DIR`, and
/// `console_assets.rs`: the table `src/gateway/console.rs` serves them from, with each
/// file's content type, length and entity tag.
fn console_assets() {
    use std::io::Write as _;

    const FILES: [(&str, &str); 4] = [
        ("index.html", "text/html; charset=utf-8"),
        ("console.js", "text/javascript; charset=utf-8"),
        ("i18n.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
    ];
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut table = String::from("pub(super) static ASSETS: &[Asset] = &[\n");
    for (name, content_type) in FILES {
        let path = root.join("console").join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // mtime 0 in the header: the same files give the same bytes.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&raw).unwrap();
        let gz = gz.finish().unwrap();
        std::fs::write(out.join(format!("{name}.gz")), &gz).unwrap();
        // FNV-1a of the file: changes whenever the file does.
        let tag = raw.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        table.push_str(&format!(
            "    Asset {{ name: {name:?}, content_type: {content_type:?}, \
             etag: \"\\\"{tag:016x}\\\"\", raw_len: {}, \
             gzip: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{name}.gz\")) }},\n",
            raw.len()
        ));
    }
    table.push_str("];\n");
    std::fs::write(out.join("console_assets.rs"), table).unwrap();
}
