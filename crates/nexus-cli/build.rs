//! Link options of the `nexus` binary in release builds (x86_64 Linux with glibc, where rustc
//! links with its bundled lld):
//!
//! - `-z pack-relative-relocs`: the ~50,000 relative relocations of a position-independent
//!   binary packed into a few kilobytes (`DT_RELR`, glibc 2.36 or later) instead of 1.2 MB that
//!   the loader reads at every start.
//! - `--symbol-ordering-file=link-order.txt`: the functions a server runs at start and on a
//!   turn placed next to each other, so the pages of code it maps (the kernel maps 64 KiB around
//!   each page it touches) hold little else. `scripts/link-order` regenerates the list; names
//!   missing from a build are skipped, so a stale list only places less code.
//!
//! `NEXUS_LINK_ORDER=off` leaves both out (another linker, an older glibc).

#![allow(
    clippy::print_stdout,
    reason = "cargo reads build instructions from stdout"
)]

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=NEXUS_LINK_ORDER");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let release = var("PROFILE") == "release";
    let target = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64";
    if !release || !target || var("NEXUS_LINK_ORDER") == "off" {
        return;
    }
    println!("cargo:rustc-link-arg-bin=nexus=-Wl,-z,pack-relative-relocs");
    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join("link-order.txt");
    if order.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=nexus=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bin=nexus=-Wl,--no-warn-symbol-ordering");
    }
}
