//! Writes the generated whisper model the benchmarks use: tiny.en-sized,
//! random weights from a fixed seed (so it costs what a real tiny.en costs
//! and transcribes nonsense). No weights are downloaded.
//!
//!     cargo run --release -p voxbridge-e2e --example whisper_model -- OUT.bin

use voxbridge_models::asr::ggml::{self, Dims};

fn main() {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: whisper_model OUT.bin");
        std::process::exit(2);
    };
    let path = std::path::Path::new(&out);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("{}: {e}", dir.display());
            std::process::exit(1);
        }
    }
    match ggml::write_model(path, &Dims::TINY_EN, 2026, true) {
        Ok(bytes) => println!("wrote {} ({:.1} MB)", path.display(), bytes as f64 / 1e6),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
