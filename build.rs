//! Build script: embeds every font file in `assets/fonts/` into the binary as a table of (file name,
//! bytes), so the PDF letter's font list (`mappings/pdf-fonts.toml`) can name fonts as data while the
//! gateway stays one self-contained binary (a container needs no font directory and the PDF cannot
//! change with what a host has installed). Which fonts are used, and in which order, is decided by the
//! mapping, not here; a test checks that the two list the same files.

use std::io::Write;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/fonts");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|n| [".ttf", ".otf", ".ttc"].iter().any(|ext| n.ends_with(ext)))
        .collect();
    // Sorted: the same tree gives the same table.
    names.sort();
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("fonts.rs");
    let mut f = std::fs::File::create(&out).expect("OUT_DIR is writable");
    writeln!(f, "/// Every font file of `assets/fonts/`, by file name.").unwrap();
    writeln!(f, "pub static FONT_FILES: &[(&str, &[u8])] = &[").unwrap();
    for n in &names {
        println!("cargo:rerun-if-changed={}", dir.join(n).display());
        writeln!(f, "    ({n:?}, include_bytes!({:?})),", dir.join(n).display().to_string()).unwrap();
    }
    writeln!(f, "];").unwrap();
}
