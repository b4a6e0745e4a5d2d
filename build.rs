//! Link settings for the wasm component (nothing for native builds).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
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
