//! Bindings of our own (bindgen) to the Debian C libraries the models use:
//! PocketSphinx 5prealpha (`libpocketsphinx-dev`, with sphinxbase) for the
//! `sphinx` feature and espeak-ng (`libespeak-ng-dev`) for `espeak`. Only the
//! functions and types we call are allowlisted. With neither feature this
//! script does nothing, so such a build needs no libclang or pkg-config
//! library. `scripts/install-models-deps.sh` installs the headers and
//! libclang.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // A build script is compiled with its package's features, so the
    // optional build-dependencies (bindgen, pkg-config) exist only here.
    #[cfg(feature = "sphinx")]
    sphinx::bind();
    #[cfg(feature = "espeak")]
    espeak::bind();
}

#[cfg(any(feature = "sphinx", feature = "espeak"))]
fn out_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"))
}

#[cfg(feature = "sphinx")]
mod sphinx {
    pub fn bind() {
        let ps = pkg_config::Config::new()
            .atleast_version("5prealpha")
            .probe("pocketsphinx")
            .unwrap_or_else(|e| {
                panic!("pocketsphinx not found ({e}); run scripts/install-models-deps.sh, or build without the `sphinx` feature")
            });
        let mut clang_args: Vec<String> = ps
            .include_paths
            .iter()
            .map(|p| format!("-I{}", p.display()))
            .collect();
        if let Ok(sb) = pkg_config::Config::new()
            .cargo_metadata(false)
            .probe("sphinxbase")
        {
            clang_args.extend(
                sb.include_paths
                    .iter()
                    .map(|p| format!("-I{}", p.display())),
            );
        }
        bindgen::Builder::default()
            .header_contents(
                "voxbridge_pocketsphinx.h",
                "#include <pocketsphinx.h>\n#include <sphinxbase/err.h>\n",
            )
            .clang_args(&clang_args)
            .allowlist_function("ps_(args|init|free|get_config|start_stream|start_utt|process_raw|end_utt|get_hyp|get_prob|set_jsgf_string|set_search|get_search|unset_search|lookup_word|get_n_frames)")
            .allowlist_function("cmd_ln_(parse_r|free_r|set_float_r|float_r)")
            .allowlist_function("err_set_logfp|err_set_debug_level")
            .allowlist_type("ps_decoder_t|cmd_ln_t|arg_t")
            .layout_tests(false)
            .generate()
            .expect("bindgen: pocketsphinx.h")
            .write_to_file(super::out_dir().join("pocketsphinx_sys.rs"))
            .expect("write pocketsphinx bindings");
    }
}

#[cfg(feature = "espeak")]
mod espeak {
    pub fn bind() {
        pkg_config::Config::new()
            .probe("espeak-ng")
            .unwrap_or_else(|e| {
                panic!("espeak-ng not found ({e}); run scripts/install-models-deps.sh, or build without the `espeak` feature")
            });
        bindgen::Builder::default()
            .header_contents("voxbridge_espeak.h", "#include <espeak-ng/speak_lib.h>\n")
            .allowlist_function("espeak_(Initialize|SetSynthCallback|SetVoiceByName|SetParameter|Synth|Synchronize|Terminate|Info)")
            .allowlist_type("espeak_EVENT|espeak_AUDIO_OUTPUT|espeak_ERROR|espeak_PARAMETER|espeak_POSITION_TYPE")
            .allowlist_var("espeakCHARS_UTF8|espeakINITIALIZE_DONT_EXIT|espeakSSML")
            .rustified_enum("espeak_AUDIO_OUTPUT|espeak_PARAMETER|espeak_POSITION_TYPE")
            .layout_tests(false)
            .generate()
            .expect("bindgen: espeak-ng/speak_lib.h")
            .write_to_file(super::out_dir().join("espeak_sys.rs"))
            .expect("write espeak-ng bindings");
    }
}
