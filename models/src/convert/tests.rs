//! The converter on generated CTranslate2 models: a tiny WhisperSpec with
//! distinct values in every variable, so each ggml tensor can be traced
//! back to the rows it came from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::ctranslate2::{self, DType};
use super::*;

const N: usize = 8; // model width
const MELS: usize = 80;
const AUDIO_CTX: usize = 16;
const TEXT_CTX: usize = 8;
const VOCAB: usize = 51864;

type Var = (String, Vec<usize>, DType, Vec<u8>);

fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
        .collect()
}

/// Values exactly representable in f16, different per variable.
fn pattern(seed: usize, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((seed * 37 + i) % 1000) as f32 / 8.0 - 60.0)
        .collect()
}

/// The variables of a 1+1-layer WhisperSpec model of width [`N`].
fn whisper_vars() -> Vec<Var> {
    let mut v: Vec<(String, Vec<usize>)> = vec![
        ("encoder/conv1/weight".into(), vec![N, MELS, 3]),
        ("encoder/conv1/bias".into(), vec![N]),
        ("encoder/conv2/weight".into(), vec![N, N, 3]),
        ("encoder/conv2/bias".into(), vec![N]),
        (
            "encoder/position_encodings/encodings".into(),
            vec![AUDIO_CTX, N],
        ),
        ("encoder/layer_norm/gamma".into(), vec![N]),
        ("encoder/layer_norm/beta".into(), vec![N]),
        ("decoder/embeddings/weight".into(), vec![VOCAB, N]),
        (
            "decoder/position_encodings/encodings".into(),
            vec![TEXT_CTX, N],
        ),
        ("decoder/layer_norm/gamma".into(), vec![N]),
        ("decoder/layer_norm/beta".into(), vec![N]),
    ];
    let ln = |p: &str, v: &mut Vec<(String, Vec<usize>)>| {
        v.push((format!("{p}/layer_norm/gamma"), vec![N]));
        v.push((format!("{p}/layer_norm/beta"), vec![N]));
    };
    let lin = |p: &str, rows: usize, cols: usize, v: &mut Vec<(String, Vec<usize>)>| {
        v.push((format!("{p}/weight"), vec![rows, cols]));
        v.push((format!("{p}/bias"), vec![rows]));
    };
    for side in ["encoder", "decoder"] {
        let b = format!("{side}/layer_0");
        ln(&format!("{b}/self_attention"), &mut v);
        lin(&format!("{b}/self_attention/linear_0"), 3 * N, N, &mut v);
        lin(&format!("{b}/self_attention/linear_1"), N, N, &mut v);
        ln(&format!("{b}/ffn"), &mut v);
        lin(&format!("{b}/ffn/linear_0"), 4 * N, N, &mut v);
        lin(&format!("{b}/ffn/linear_1"), N, 4 * N, &mut v);
        if side == "decoder" {
            ln(&format!("{b}/attention"), &mut v);
            lin(&format!("{b}/attention/linear_0"), N, N, &mut v);
            lin(&format!("{b}/attention/linear_1"), 2 * N, N, &mut v);
            lin(&format!("{b}/attention/linear_2"), N, N, &mut v);
        }
    }
    let mut out: Vec<Var> = v
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let n: usize = shape.iter().product();
            let mut vals = pattern(i + 1, n);
            // The key biases whisper does not have are zero.
            if name.ends_with("self_attention/linear_0/bias") {
                vals[N..2 * N].fill(0.0);
            }
            if name.ends_with("/attention/linear_1/bias") {
                vals[..N].fill(0.0);
            }
            (name, shape, DType::F16, f16_bytes(&vals))
        })
        .collect();
    for (name, dtype, bytes) in [
        ("encoder/num_heads", DType::I16, 2i16.to_le_bytes().to_vec()),
        ("decoder/num_heads", DType::I16, 2i16.to_le_bytes().to_vec()),
        ("decoder/scale_embeddings", DType::I8, vec![0]),
        ("decoder/pre_norm", DType::I8, vec![1]),
        ("decoder/activation", DType::I8, vec![3]),
    ] {
        out.push((name.into(), vec![], dtype, bytes));
    }
    out
}

fn tied() -> Vec<(String, String)> {
    vec![(
        "decoder/projection/weight".into(),
        "decoder/embeddings/weight".into(),
    )]
}

/// GPT-2 spelling: bytes 0x21..0x7e as themselves, a space as `Ġ`.
fn vocabulary_txt() -> String {
    let mut t: Vec<String> = (b'!'..=b'~').map(|b| (b as char).to_string()).collect();
    t.push("Ġab".into());
    t.push("Ċ".into()); // a newline
    while t.len() < 50256 {
        t.push(format!("w{}", t.len()));
    }
    t.push("<|endoftext|>".into());
    while t.len() < VOCAB {
        t.push(format!("<|special{}|>", t.len()));
    }
    t.join("\n") + "\n"
}

struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str, vars: &[Var], aliases: &[(String, String)]) -> Fixture {
        let dir = std::env::temp_dir().join(format!("vb-convert-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ctranslate2::write(&dir.join("model.bin"), "WhisperSpec", 3, vars, aliases).unwrap();
        std::fs::write(dir.join("vocabulary.txt"), vocabulary_txt()).unwrap();
        Fixture { dir }
    }
    fn out(&self) -> PathBuf {
        self.dir.join("out/ggml-test.bin")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Tensor {
    n_dims: i32,
    f16: bool,
    ne: Vec<i32>,
    values: Vec<f32>,
}

/// Reads a ggml file's vocabulary and tensors (test-side, independent of
/// the writer).
fn read_ggml(path: &Path) -> (Vec<Vec<u8>>, Vec<(String, Tensor)>) {
    let b = std::fs::read(path).unwrap();
    let i32_at = |p: usize| i32::from_le_bytes(b[p..p + 4].try_into().unwrap());
    let mut p = 4 + 44;
    let (n_mel, n_fft) = (i32_at(p) as usize, i32_at(p + 4) as usize);
    p += 8 + n_mel * n_fft * 4;
    let n = i32_at(p) as usize;
    p += 4;
    let mut vocab = Vec::new();
    for _ in 0..n {
        let l = i32_at(p) as usize;
        vocab.push(b[p + 4..p + 4 + l].to_vec());
        p += 4 + l;
    }
    let mut tensors = Vec::new();
    while p < b.len() {
        let (n_dims, name_len, ttype) = (i32_at(p), i32_at(p + 4) as usize, i32_at(p + 8));
        p += 12;
        let ne: Vec<i32> = (0..n_dims as usize).map(|i| i32_at(p + 4 * i)).collect();
        p += 4 * n_dims as usize;
        let name = String::from_utf8(b[p..p + name_len].to_vec()).unwrap();
        p += name_len;
        let count: usize = ne.iter().map(|&d| d as usize).product();
        let values: Vec<f32> = if ttype == 1 {
            (0..count)
                .map(|i| half::f16::from_le_bytes([b[p + 2 * i], b[p + 2 * i + 1]]).to_f32())
                .collect()
        } else {
            (0..count)
                .map(|i| f32::from_le_bytes(b[p + 4 * i..p + 4 * i + 4].try_into().unwrap()))
                .collect()
        };
        p += count * if ttype == 1 { 2 } else { 4 };
        tensors.push((
            name,
            Tensor {
                n_dims,
                f16: ttype == 1,
                ne,
                values,
            },
        ));
    }
    (vocab, tensors)
}

fn source_values(vars: &[Var], name: &str) -> Vec<f32> {
    let (_, _, _, bytes) = vars.iter().find(|v| v.0 == name).unwrap();
    bytes
        .chunks_exact(2)
        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect()
}

#[test]
fn converts_fused_attention_and_ties_the_projection() {
    let vars = whisper_vars();
    let fx = Fixture::new("ok", &vars, &tied());
    let outcome = import(&fx.dir, Format::Ctranslate2, &fx.out()).unwrap();
    let d = outcome.info.dims;
    assert_eq!(
        (
            d.n_vocab,
            d.n_audio_ctx,
            d.n_audio_state,
            d.n_audio_head,
            d.n_audio_layer
        ),
        (VOCAB as i32, AUDIO_CTX as i32, N as i32, 2, 1)
    );
    assert_eq!(
        (
            d.n_text_ctx,
            d.n_text_head,
            d.n_text_layer,
            d.n_mels,
            d.ftype
        ),
        (8, 2, 1, 80, 1)
    );
    assert!(!fx.dir.join("out/ggml-test.bin.part").exists());

    let (vocab, tensors) = read_ggml(&fx.out());
    assert_eq!(vocab.len(), 50257);
    assert_eq!(vocab[0], b"!");
    assert_eq!(vocab[94], b" ab");
    assert_eq!(vocab[95], b"\n");
    assert_eq!(vocab[50256], b"<|endoftext|>");

    let t: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    assert_eq!(tensors.len(), ggml::tensor_layout(&d).len());
    // whisper's state_dict order.
    assert_eq!(tensors[0].0, "encoder.positional_embedding");
    assert_eq!(tensors.last().unwrap().0, "decoder.ln.bias");

    let rows = |var: &str, from: usize, to: usize| {
        let v = source_values(&vars, var);
        let per = v.len() / vars.iter().find(|x| x.0 == var).unwrap().1[0];
        v[from * per..to * per].to_vec()
    };
    let qkv = "encoder/layer_0/self_attention/linear_0";
    assert_eq!(
        t["encoder.blocks.0.attn.query.weight"].values,
        rows(&format!("{qkv}/weight"), 0, N)
    );
    assert_eq!(
        t["encoder.blocks.0.attn.key.weight"].values,
        rows(&format!("{qkv}/weight"), N, 2 * N)
    );
    assert_eq!(
        t["encoder.blocks.0.attn.value.weight"].values,
        rows(&format!("{qkv}/weight"), 2 * N, 3 * N)
    );
    assert_eq!(
        t["encoder.blocks.0.attn.query.bias"].values,
        rows(&format!("{qkv}/bias"), 0, N)
    );
    assert_eq!(
        t["encoder.blocks.0.attn.value.bias"].values,
        rows(&format!("{qkv}/bias"), 2 * N, 3 * N)
    );
    assert!(!t.contains_key("encoder.blocks.0.attn.key.bias"));
    let kv = "decoder/layer_0/attention/linear_1";
    assert_eq!(
        t["decoder.blocks.0.cross_attn.key.weight"].values,
        rows(&format!("{kv}/weight"), 0, N)
    );
    assert_eq!(
        t["decoder.blocks.0.cross_attn.value.weight"].values,
        rows(&format!("{kv}/weight"), N, 2 * N)
    );
    assert_eq!(
        t["decoder.blocks.0.cross_attn.value.bias"].values,
        rows(&format!("{kv}/bias"), N, 2 * N)
    );
    assert_eq!(
        t["decoder.blocks.0.cross_attn.out.weight"].values,
        source_values(&vars, "decoder/layer_0/attention/linear_2/weight")
    );
    assert_eq!(
        t["decoder.blocks.0.attn.out.bias"].values,
        source_values(&vars, "decoder/layer_0/self_attention/linear_1/bias")
    );
    assert_eq!(
        t["decoder.blocks.0.mlp.2.weight"].values,
        source_values(&vars, "decoder/layer_0/ffn/linear_1/weight")
    );
    assert_eq!(
        t["encoder.ln_post.weight"].values,
        source_values(&vars, "encoder/layer_norm/gamma")
    );
    assert_eq!(
        t["decoder.ln.bias"].values,
        source_values(&vars, "decoder/layer_norm/beta")
    );
    assert_eq!(
        t["decoder.blocks.0.cross_attn_ln.weight"].values,
        source_values(&vars, "decoder/layer_0/attention/layer_norm/gamma")
    );
    // Layout: conv biases n × 1 in f32, vectors and positional embeddings
    // f32, matrices and kernels f16.
    let conv_bias = t["encoder.conv1.bias"];
    assert_eq!(
        (conv_bias.n_dims, conv_bias.f16, conv_bias.ne.clone()),
        (2, false, vec![1, N as i32])
    );
    let kernel = t["encoder.conv2.weight"];
    assert_eq!(
        (kernel.n_dims, kernel.f16, kernel.ne.clone()),
        (3, true, vec![3, N as i32, N as i32])
    );
    let pos = t["decoder.positional_embedding"];
    assert_eq!(
        (pos.n_dims, pos.f16, pos.ne.clone()),
        (2, false, vec![N as i32, TEXT_CTX as i32])
    );
    assert_eq!(
        pos.values,
        source_values(&vars, "decoder/position_encodings/encodings")
    );
    let emb = t["decoder.token_embedding.weight"];
    assert_eq!(
        (emb.f16, emb.ne.clone()),
        (true, vec![N as i32, VOCAB as i32])
    );
    assert_eq!(t["decoder.ln.weight"].n_dims, 1);
    assert_eq!(
        outcome.sha256,
        crate::checksum::sha256_file(&fx.out()).unwrap()
    );
}

#[test]
fn refuses_a_key_bias() {
    for (var, at) in [
        ("encoder/layer_0/self_attention/linear_0/bias", N + 3),
        ("decoder/layer_0/attention/linear_1/bias", 0),
    ] {
        let mut vars = whisper_vars();
        let v = vars.iter_mut().find(|v| v.0 == var).unwrap();
        v.3[2 * at..2 * at + 2].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
        let fx = Fixture::new("kbias", &vars, &tied());
        let e = import(&fx.dir, Format::Ctranslate2, &fx.out()).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ModelError::Convert { .. }), "{msg}");
        assert!(
            msg.contains(var) && msg.contains("key") && msg.contains("0.5"),
            "{msg}"
        );
        assert!(!fx.out().exists());
    }
}

#[test]
fn refuses_an_untied_projection_and_quantised_weights() {
    let mut vars = whisper_vars();
    let mut proj = vars
        .iter()
        .find(|v| v.0 == "decoder/embeddings/weight")
        .unwrap()
        .clone();
    proj.0 = "decoder/projection/weight".into();
    proj.3[0] ^= 1;
    vars.push(proj);
    let fx = Fixture::new("untied", &vars, &[]);
    let msg = import(&fx.dir, Format::Ctranslate2, &fx.out())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("ties the output projection"), "{msg}");

    let mut vars = whisper_vars();
    let v = vars
        .iter_mut()
        .find(|v| v.0 == "encoder/layer_0/ffn/linear_0/weight")
        .unwrap();
    v.2 = DType::I8;
    v.3.truncate(v.3.len() / 2);
    let fx = Fixture::new("int8", &vars, &tied());
    let msg = import(&fx.dir, Format::Ctranslate2, &fx.out())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("quantised"), "{msg}");

    let mut vars = whisper_vars();
    vars.retain(|v| v.0 != "decoder/layer_0/attention/linear_2/weight");
    let fx = Fixture::new("missing", &vars, &tied());
    let msg = import(&fx.dir, Format::Ctranslate2, &fx.out())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("linear_2/weight"), "{msg}");
}

#[test]
fn truncated_or_garbage_input_is_an_error() {
    let vars = whisper_vars();
    let fx = Fixture::new("trunc", &vars, &tied());
    let bin = fx.dir.join("model.bin");
    let whole = std::fs::read(&bin).unwrap();
    // Every cut inside the first headers, then every few kB to the end.
    let cuts = (0..700)
        .chain((700..whole.len()).step_by(4099))
        .chain([whole.len() - 1]);
    for cut in cuts {
        let r = ctranslate2::Model::parse(&bin, whole[..cut].to_vec());
        assert!(r.is_err(), "a file cut at {cut} of {} parsed", whole.len());
    }
    // Flipped bytes in the headers: an error or a model, never a panic.
    for i in (0..600).step_by(3) {
        let mut b = whole.clone();
        b[i] ^= 0xa5;
        let _ = ctranslate2::Model::parse(&bin, b);
    }
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for len in [0usize, 3, 4, 64, 4096] {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        assert!(ctranslate2::Model::parse(&bin, junk).is_err());
    }
    // Through `import`: a truncated model.bin, a missing vocabulary.
    std::fs::write(&bin, &whole[..whole.len() / 2]).unwrap();
    let msg = import(&fx.dir, Format::Ctranslate2, &fx.out())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("truncated"), "{msg}");
    std::fs::write(&bin, &whole).unwrap();
    std::fs::remove_file(fx.dir.join("vocabulary.txt")).unwrap();
    let msg = import(&fx.dir, Format::Ctranslate2, &fx.out())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("vocabulary"), "{msg}");
    assert!(import(&fx.dir.join("nothing-here"), Format::Ctranslate2, &fx.out()).is_err());
}

#[test]
fn format_names() {
    assert_eq!("ctranslate2".parse::<Format>(), Ok(Format::Ctranslate2));
    assert!("onnx".parse::<Format>().is_err());
}
