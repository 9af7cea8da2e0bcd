//! whisper.cpp's ggml model file: checking one before whisper.cpp sees it,
//! and writing one with random weights for tests and benchmarks.
//!
//! Layout (little-endian), as `whisper_model_load` reads it:
//! ```text
//! u32 magic "ggml" (0x67676d6c)
//! i32 × 11  n_vocab n_audio_ctx n_audio_state n_audio_head n_audio_layer
//!           n_text_ctx n_text_state n_text_head n_text_layer n_mels ftype
//! i32 n_mel, i32 n_fft, f32 × n_mel·n_fft    mel filter bank
//! i32 n;  n × (u32 len, bytes)               vocabulary (special tokens implied)
//! tensors until EOF: i32 n_dims, i32 name_len, i32 type, i32 ne[n_dims], name, data
//! ```
//! whisper.cpp trusts the file: a truncated header makes it allocate from
//! garbage sizes, and a file cut inside the last tensor loads "successfully"
//! with garbage weights. [`inspect`] walks the whole structure first, so a
//! bad file is an error at start that names the problem.
//!
//! [`write_model`] writes the real format with the tensors whisper.cpp
//! expects and random weights (a deterministic generator); its header, mel
//! filters and vocabulary layout match whisper.cpp's vocab-only test file
//! `for-tests-ggml-tiny.en.bin` (checked during development, see
//! `models/REFERENCE.md`). Random weights recognise nothing: tests use them
//! to run the real loading and inference path, never to check text.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use crate::ModelError;

/// "ggml" in the file's first four bytes.
pub const MAGIC: u32 = 0x6767_6d6c;

/// Model hyper-parameters (the file header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    /// 0: f32 weights, 1: f16 (quantised types are read, not written).
    pub ftype: i32,
}

impl Dims {
    /// ggml `tiny.en`: the real model's dimensions (for the benchmark).
    pub const TINY_EN: Dims = Dims {
        n_vocab: 51864,
        n_audio_ctx: 1500,
        n_audio_state: 384,
        n_audio_head: 6,
        n_audio_layer: 4,
        n_text_ctx: 448,
        n_text_state: 384,
        n_text_head: 6,
        n_text_layer: 4,
        n_mels: 80,
        ftype: 1,
    };

    /// A small model for tests (~7 MB, most of it the token embedding);
    /// `multilingual` adds the language tokens (for `zh`).
    pub fn test_small(multilingual: bool) -> Dims {
        Dims {
            n_vocab: if multilingual { 51865 } else { 51864 },
            n_audio_state: 64,
            n_audio_head: 2,
            n_audio_layer: 1,
            n_text_state: 64,
            n_text_head: 2,
            n_text_layer: 1,
            ..Dims::TINY_EN
        }
    }

    /// Whether whisper.cpp treats the model as multilingual.
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }

    /// How many tensors a complete model has.
    pub fn tensor_count(&self) -> usize {
        (7 + 15 * self.n_audio_layer + 4 + 24 * self.n_text_layer) as usize
    }
}

/// Tokens stored in the file (whisper.cpp adds the special ones): 50257
/// for GPT-2's byte-pair vocabulary, the last being `<|endoftext|>`.
pub const FILE_VOCAB: usize = 50257;
/// FFT bins of the mel filter bank (n_fft 400 / 2 + 1).
pub const N_FFT_BINS: i32 = 201;

/// What [`inspect`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub dims: Dims,
    pub file_vocab: usize,
    pub tensors: usize,
    pub bytes: u64,
}

impl ModelInfo {
    /// A short description: "tiny (4 layers, 384 wide), English-only, f16".
    pub fn describe(&self) -> String {
        let size = match self.dims.n_audio_layer {
            4 => "tiny",
            6 => "base",
            12 => "small",
            24 => "medium",
            32 => "large",
            _ => "custom",
        };
        format!(
            "{size} ({} layers, {} wide), {}, {}",
            self.dims.n_audio_layer,
            self.dims.n_audio_state,
            if self.dims.is_multilingual() {
                "multilingual"
            } else {
                "English-only"
            },
            type_name(self.dims.ftype % 1000)
        )
    }
}

fn type_name(t: i32) -> &'static str {
    match t {
        0 => "f32",
        1 => "f16",
        2 => "q4_0",
        3 => "q4_1",
        6 => "q5_0",
        7 => "q5_1",
        8 => "q8_0",
        _ => "unknown",
    }
}

/// (block size, bytes per block) of a ggml tensor type.
fn type_layout(t: i32) -> Option<(u64, u64)> {
    Some(match t {
        0 => (1, 4),
        1 => (1, 2),
        2 => (32, 18),
        3 => (32, 20),
        6 => (32, 22),
        7 => (32, 24),
        8 => (32, 34),
        _ => return None,
    })
}

/// One tensor of a model file as whisper.cpp expects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// whisper.cpp's name (`encoder.blocks.0.attn.query.weight`).
    pub name: String,
    /// Shape, innermost first (ggml's `ne`; the reverse of PyTorch's).
    pub ne: [i32; 3],
    /// Dimensions written in the tensor header: 1 for vectors, 2 for
    /// matrices and the convolution biases (n × 1), 3 for the kernels.
    pub n_dims: i32,
    /// Stored as f16 (else f32): the model's weight type for matrices and
    /// kernels; vectors, convolution biases and positional embeddings are
    /// always f32, as whisper.cpp's converter writes them.
    pub f16: bool,
    kind: Kind,
}

impl TensorSpec {
    /// Number of values.
    pub fn elements(&self) -> usize {
        self.ne.iter().map(|&d| d.max(0) as usize).product()
    }
}

/// Every tensor of a model with `d`, in the order of whisper's PyTorch
/// `state_dict` (the order whisper.cpp's converter writes; whisper.cpp
/// itself looks tensors up by name).
pub fn tensor_layout(d: &Dims) -> Vec<TensorSpec> {
    let (a, t) = (d.n_audio_state, d.n_text_state);
    let mut v: Vec<(String, [i32; 3], Kind)> = vec![
        (
            "encoder.positional_embedding".to_string(),
            [a, d.n_audio_ctx, 1],
            Kind::F32,
        ),
        ("encoder.conv1.weight".into(), [3, d.n_mels, a], Kind::Conv),
        ("encoder.conv1.bias".into(), [1, a, 1], Kind::F32),
        ("encoder.conv2.weight".into(), [3, a, a], Kind::Conv),
        ("encoder.conv2.bias".into(), [1, a, 1], Kind::F32),
    ];
    let block = |prefix: &str, n: i32, cross: bool, v: &mut Vec<(String, [i32; 3], Kind)>| {
        let attn = |p: &str| -> Vec<(String, [i32; 3], Kind)> {
            [
                ("attn.query.weight", [n, n, 1], Kind::Weight),
                ("attn.query.bias", [n, 1, 1], Kind::F32),
                ("attn.key.weight", [n, n, 1], Kind::Weight),
                ("attn.value.weight", [n, n, 1], Kind::Weight),
                ("attn.value.bias", [n, 1, 1], Kind::F32),
                ("attn.out.weight", [n, n, 1], Kind::Weight),
                ("attn.out.bias", [n, 1, 1], Kind::F32),
                ("attn_ln.weight", [n, 1, 1], Kind::Norm),
                ("attn_ln.bias", [n, 1, 1], Kind::F32),
            ]
            .into_iter()
            .map(|(name, shape, kind)| (format!("{p}{name}"), shape, kind))
            .collect()
        };
        let mut names = attn("");
        if cross {
            names.extend(attn("cross_"));
        }
        names.extend(
            [
                ("mlp.0.weight", [n, 4 * n, 1], Kind::Weight),
                ("mlp.0.bias", [4 * n, 1, 1], Kind::F32),
                ("mlp.2.weight", [4 * n, n, 1], Kind::Weight),
                ("mlp.2.bias", [n, 1, 1], Kind::F32),
                ("mlp_ln.weight", [n, 1, 1], Kind::Norm),
                ("mlp_ln.bias", [n, 1, 1], Kind::F32),
            ]
            .map(|(name, shape, kind)| (name.to_string(), shape, kind)),
        );
        for (name, shape, kind) in names {
            v.push((format!("{prefix}.{name}"), shape, kind));
        }
    };
    for i in 0..d.n_audio_layer {
        block(&format!("encoder.blocks.{i}"), a, false, &mut v);
    }
    v.push(("encoder.ln_post.weight".into(), [a, 1, 1], Kind::Norm));
    v.push(("encoder.ln_post.bias".into(), [a, 1, 1], Kind::F32));
    v.push((
        "decoder.positional_embedding".into(),
        [t, d.n_text_ctx, 1],
        Kind::F32,
    ));
    v.push((
        "decoder.token_embedding.weight".into(),
        [t, d.n_vocab, 1],
        Kind::Weight,
    ));
    for i in 0..d.n_text_layer {
        block(&format!("decoder.blocks.{i}"), t, true, &mut v);
    }
    v.push(("decoder.ln.weight".into(), [t, 1, 1], Kind::Norm));
    v.push(("decoder.ln.bias".into(), [t, 1, 1], Kind::F32));
    v.into_iter()
        .map(|(name, ne, kind)| {
            let n_dims = if ne[2] > 1 {
                3
            } else if ne[1] > 1 || name.ends_with("conv1.bias") || name.ends_with("conv2.bias") {
                2
            } else {
                1
            };
            let f16 = matches!(kind, Kind::Weight | Kind::Conv) && d.ftype == 1;
            TensorSpec {
                name,
                ne,
                n_dims,
                f16,
                kind,
            }
        })
        .collect()
}

/// How a tensor is stored and initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// f32, random (positional embeddings) or zero (biases).
    F32,
    /// f32, ones (layer-norm gains).
    Norm,
    /// The model's weight type (f16 here).
    Weight,
    /// Convolution kernels: f16 unless the model is f32.
    Conv,
}

fn read_i32(r: &mut impl Read, path: &Path, what: &str) -> Result<i32, ModelError> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)
        .map_err(|_| ModelError::corrupt(path, format!("file ends inside {what}")))?;
    Ok(i32::from_le_bytes(b))
}

/// Checks a ggml whisper model file completely (header, filters,
/// vocabulary, every tensor's name, shape, type and size, nothing after the
/// last one) without loading the weights.
pub fn inspect(path: &Path) -> Result<ModelInfo, ModelError> {
    let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
    let len = file.metadata().map_err(|e| ModelError::io(path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 16, file);
    let bad = |reason: String| ModelError::corrupt(path, reason);
    let magic = read_i32(&mut r, path, "the magic")? as u32;
    if magic != MAGIC {
        return Err(bad(format!(
            "not a ggml whisper model (magic {magic:#010x})"
        )));
    }
    let mut h = [0i32; 11];
    for v in h.iter_mut() {
        *v = read_i32(&mut r, path, "the header")?;
    }
    let dims = Dims {
        n_vocab: h[0],
        n_audio_ctx: h[1],
        n_audio_state: h[2],
        n_audio_head: h[3],
        n_audio_layer: h[4],
        n_text_ctx: h[5],
        n_text_state: h[6],
        n_text_head: h[7],
        n_text_layer: h[8],
        n_mels: h[9],
        ftype: h[10],
    };
    let sane = |v: i32, lo: i32, hi: i32| (lo..=hi).contains(&v);
    if !(sane(dims.n_vocab, 51864, 60_000)
        && sane(dims.n_audio_ctx, 1, 1500)
        && sane(dims.n_audio_state, 1, 4096)
        && sane(dims.n_audio_head, 1, 64)
        && sane(dims.n_audio_layer, 1, 64)
        && sane(dims.n_text_ctx, 1, 448)
        && dims.n_text_state == dims.n_audio_state
        && sane(dims.n_text_head, 1, 64)
        && sane(dims.n_text_layer, 1, 64)
        && (dims.n_mels == 80 || dims.n_mels == 128)
        && dims.n_audio_state % dims.n_audio_head == 0
        && type_layout(dims.ftype % 1000).is_some())
    {
        return Err(bad(format!("implausible header {dims:?}")));
    }
    let n_mel = read_i32(&mut r, path, "the mel filters")?;
    let n_fft = read_i32(&mut r, path, "the mel filters")?;
    if n_mel != dims.n_mels || n_fft != N_FFT_BINS {
        return Err(bad(format!(
            "mel filter bank {n_mel}×{n_fft}, expected {}×{N_FFT_BINS}",
            dims.n_mels
        )));
    }
    r.seek_relative(i64::from(n_mel) * i64::from(n_fft) * 4)
        .map_err(|e| ModelError::io(path, e))?;
    let file_vocab = read_i32(&mut r, path, "the vocabulary")?;
    if !(1..=dims.n_vocab).contains(&file_vocab) {
        return Err(bad(format!(
            "vocabulary of {file_vocab} tokens for n_vocab {}",
            dims.n_vocab
        )));
    }
    for i in 0..file_vocab {
        let n = read_i32(&mut r, path, "the vocabulary")?;
        if !(0..=1024).contains(&n) {
            return Err(bad(format!("token {i} has length {n}")));
        }
        r.seek_relative(i64::from(n))
            .map_err(|e| ModelError::io(path, e))?;
    }
    let mut pos = r.stream_position().map_err(|e| ModelError::io(path, e))?;
    if pos > len {
        return Err(bad("file ends inside the vocabulary".into()));
    }
    let expected = tensor_layout(&dims);
    let mut seen = std::collections::HashSet::new();
    while pos < len {
        let n_dims = read_i32(&mut r, path, "a tensor header")?;
        let name_len = read_i32(&mut r, path, "a tensor header")?;
        let ttype = read_i32(&mut r, path, "a tensor header")?;
        if !(1..=3).contains(&n_dims) || !(1..=256).contains(&name_len) {
            return Err(bad(format!("bad tensor header at byte {pos}")));
        }
        let mut ne = [1i32; 3];
        for d in ne.iter_mut().take(n_dims as usize) {
            *d = read_i32(&mut r, path, "a tensor header")?;
        }
        let mut name = vec![0u8; name_len as usize];
        r.read_exact(&mut name)
            .map_err(|_| bad("file ends inside a tensor name".into()))?;
        let name = String::from_utf8_lossy(&name).into_owned();
        let Some(spec) = expected.iter().find(|t| t.name == name) else {
            return Err(bad(format!("unknown tensor `{name}`")));
        };
        let shape = spec.ne;
        if shape != ne {
            return Err(bad(format!(
                "tensor `{name}` has shape {ne:?}, expected {shape:?}"
            )));
        }
        let (blck, size) =
            type_layout(ttype).ok_or_else(|| bad(format!("tensor `{name}` has type {ttype}")))?;
        let elements: u64 = ne.iter().map(|&d| d as u64).product();
        if !elements.is_multiple_of(blck) {
            return Err(bad(format!("tensor `{name}` does not fill whole blocks")));
        }
        let bytes = elements / blck * size;
        let data_start = r.stream_position().map_err(|e| ModelError::io(path, e))?;
        if data_start + bytes > len {
            return Err(bad(format!(
                "file ends inside tensor `{name}` ({} of {bytes} bytes present): truncated download?",
                len.saturating_sub(data_start)
            )));
        }
        if !seen.insert(name.clone()) {
            return Err(bad(format!("tensor `{name}` appears twice")));
        }
        r.seek_relative(bytes as i64)
            .map_err(|e| ModelError::io(path, e))?;
        pos = data_start + bytes;
    }
    if seen.is_empty() {
        return Err(bad("no weights (a vocabulary-only test file?)".into()));
    }
    if seen.len() != expected.len() {
        let missing: Vec<&str> = expected
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| !seen.contains(*n))
            .take(3)
            .collect();
        return Err(bad(format!(
            "{} of {} tensors present; missing e.g. {}",
            seen.len(),
            expected.len(),
            missing.join(", ")
        )));
    }
    Ok(ModelInfo {
        dims,
        file_vocab: file_vocab as usize,
        tensors: seen.len(),
        bytes: len,
    })
}

/// The Slaney-style mel filter bank whisper uses, row-major, bit for bit
/// what librosa `mel(sr=16000, n_fft=400, n_mels, norm="slaney")` stored
/// in whisper's `mel_filters.npz`: the same float64 steps in numpy's order
/// (`linspace`, `rfftfreq`), rounded to f32 once before and once after the
/// Slaney normalisation, as librosa's float32 array does.
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    let n_fft = N_FFT_BINS as usize;
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| {
        if f >= min_log_hz {
            min_log_mel + (f / min_log_hz).ln() / logstep
        } else {
            f / f_sp
        }
    };
    let mel_to_hz = |m: f64| {
        if m >= min_log_mel {
            min_log_hz * (logstep * (m - min_log_mel)).exp()
        } else {
            f_sp * m
        }
    };
    // numpy.linspace(0, max, n + 2): i · step, the last point exactly max.
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(8000.0));
    let n_pts = n_mels + 2;
    let step = (hi - lo) / (n_pts - 1) as f64;
    let pts: Vec<f64> = (0..n_pts)
        .map(|i| {
            if i == n_pts - 1 {
                mel_to_hz(hi)
            } else {
                mel_to_hz(i as f64 * step + lo)
            }
        })
        .collect();
    // numpy.fft.rfftfreq(400, 1/16000): k · (1 / (n · d)).
    let val = 1.0 / (400.0 * (1.0 / 16000.0));
    let mut out = vec![0f32; n_mels * n_fft];
    for m in 0..n_mels {
        let enorm = 2.0 / (pts[m + 2] - pts[m]);
        for k in 0..n_fft {
            let f = k as f64 * val;
            let lower = -(pts[m] - f) / (pts[m + 1] - pts[m]);
            let upper = (pts[m + 2] - f) / (pts[m + 2] - pts[m + 1]);
            let w = lower.min(upper).max(0.0) as f32;
            out[m * n_fft + k] = (f64::from(w) * enorm) as f32;
        }
    }
    out
}

/// A stand-in for GPT-2's byte-pair vocabulary with the same shape: the
/// 256 byte tokens first, word-like merges after, `<|endoftext|>` last.
/// Random-weight test models use it; imported models carry their own.
pub fn test_vocabulary() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = (0u8..=255).map(|b| vec![b]).collect();
    let letters = b"etaoinshrdlucmfwypvbgkjqxz";
    let mut i = 0usize;
    while v.len() < FILE_VOCAB - 1 {
        let mut w = vec![b' '];
        let mut n = i;
        loop {
            w.push(letters[n % letters.len()]);
            n /= letters.len();
            if n == 0 {
                break;
            }
        }
        v.push(w);
        i += 1;
    }
    v.push(b"<|endoftext|>".to_vec());
    v
}

/// IEEE half precision from single (round to nearest even).
fn f16_bits(x: f32) -> u16 {
    half::f16::from_f32(x).to_bits()
}

/// xorshift64*: deterministic, fast, good enough for weights.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        // Uniform in [-1, 1).
        (v >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Writes a ggml whisper model: [`Writer::create`] writes the header, mel
/// filters and vocabulary, [`Writer::tensor`] one tensor, [`Writer::finish`]
/// flushes and syncs.
pub struct Writer {
    w: BufWriter<File>,
    path: std::path::PathBuf,
}

impl Writer {
    /// Creates `path` and writes everything before the tensors.
    pub fn create(path: &Path, dims: &Dims, vocab: &[Vec<u8>]) -> Result<Self, ModelError> {
        if dims.ftype != 0 && dims.ftype != 1 {
            return Err(ModelError::Config(
                "ggml writer: ftype 0 (f32) or 1 (f16) only".into(),
            ));
        }
        let file = File::create(path).map_err(|e| ModelError::io(path, e))?;
        let mut me = Writer {
            w: BufWriter::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
        };
        me.put(&MAGIC.to_le_bytes())?;
        for v in [
            dims.n_vocab,
            dims.n_audio_ctx,
            dims.n_audio_state,
            dims.n_audio_head,
            dims.n_audio_layer,
            dims.n_text_ctx,
            dims.n_text_state,
            dims.n_text_head,
            dims.n_text_layer,
            dims.n_mels,
            dims.ftype,
        ] {
            me.put(&v.to_le_bytes())?;
        }
        me.put(&dims.n_mels.to_le_bytes())?;
        me.put(&N_FFT_BINS.to_le_bytes())?;
        let filters = mel_filters(dims.n_mels as usize);
        let bytes: Vec<u8> = filters.iter().flat_map(|f| f.to_le_bytes()).collect();
        me.put(&bytes)?;
        me.put(&(vocab.len() as i32).to_le_bytes())?;
        for t in vocab {
            me.put(&(t.len() as u32).to_le_bytes())?;
            me.put(t)?;
        }
        Ok(me)
    }

    fn put(&mut self, b: &[u8]) -> Result<(), ModelError> {
        self.w
            .write_all(b)
            .map_err(|e| ModelError::io(&self.path, e))
    }

    /// Writes one tensor: its header from `spec`, then `values` as f16 or
    /// f32 as `spec` says.
    pub fn tensor(&mut self, spec: &TensorSpec, values: &[f32]) -> Result<(), ModelError> {
        if values.len() != spec.elements() {
            return Err(ModelError::Config(format!(
                "ggml writer: {} values for `{}` of shape {:?}",
                values.len(),
                spec.name,
                spec.ne
            )));
        }
        self.put(&spec.n_dims.to_le_bytes())?;
        self.put(&(spec.name.len() as i32).to_le_bytes())?;
        self.put(&i32::from(spec.f16).to_le_bytes())?;
        for d in spec.ne.iter().take(spec.n_dims as usize) {
            self.put(&d.to_le_bytes())?;
        }
        self.put(spec.name.as_bytes())?;
        let mut buf = Vec::with_capacity(values.len() * if spec.f16 { 2 } else { 4 });
        for &x in values {
            if spec.f16 {
                buf.extend_from_slice(&f16_bits(x).to_le_bytes());
            } else {
                buf.extend_from_slice(&x.to_le_bytes());
            }
        }
        self.put(&buf)
    }

    /// Flushes and syncs the file; returns its size.
    pub fn finish(mut self) -> Result<u64, ModelError> {
        let path = self.path.clone();
        self.w.flush().map_err(|e| ModelError::io(&path, e))?;
        let file = self
            .w
            .into_inner()
            .map_err(|e| ModelError::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| ModelError::io(&path, e))?;
        Ok(file.metadata().map_err(|e| ModelError::io(&path, e))?.len())
    }
}

/// Writes a complete ggml whisper model with `dims` and random weights
/// (uniform, small; layer-norm gains 1, biases 0). `weights: false` writes
/// the vocabulary-only layout of whisper.cpp's test file instead.
pub fn write_model(path: &Path, dims: &Dims, seed: u64, weights: bool) -> Result<u64, ModelError> {
    let mut w = Writer::create(path, dims, &test_vocabulary())?;
    if weights {
        let mut rng = Rng(seed | 1);
        for spec in tensor_layout(dims) {
            let ne = spec.ne;
            let kind = spec.kind;
            // Fan-in scaled weights keep activations bounded.
            let fan_in = f32::max(
                ne[0] as f32
                    * if kind == Kind::Conv {
                        ne[1] as f32
                    } else {
                        1.0
                    },
                1.0,
            );
            let scale = match kind {
                Kind::Norm => 0.0,
                Kind::F32 if spec.name.ends_with("bias") => 0.0,
                Kind::F32 => 0.02,
                Kind::Weight | Kind::Conv => 1.0 / fan_in.sqrt(),
            };
            let values: Vec<f32> = (0..spec.elements())
                .map(|_| {
                    if kind == Kind::Norm {
                        1.0
                    } else {
                        rng.next_f32() * scale
                    }
                })
                .collect();
            w.tensor(&spec, &values)?;
        }
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision() {
        for (x, bits) in [
            (0.0f32, 0u16),
            (1.0, 0x3c00),
            (-2.0, 0xc000),
            (0.5, 0x3800),
            (65504.0, 0x7bff),
            (1e-8, 0),
        ] {
            assert_eq!(f16_bits(x), bits, "{x}");
        }
        assert_eq!(f16_bits(1e6), 0x7c00);
        assert_eq!(f16_bits(0.1), 0x2e66);
    }

    #[test]
    fn header_and_mel_filters_are_whispers_bit_for_bit() {
        // sha256 of bytes 0..48 (magic and hyper-parameters) and 48..64376
        // (mel filter bank) of whisper.cpp's for-tests-ggml-tiny.en.bin.
        let dir = std::env::temp_dir().join(format!("vb-ggml-hdr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.bin");
        write_model(&p, &Dims::TINY_EN, 1, false).unwrap();
        let b = std::fs::read(&p).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            crate::checksum::sha256_hex(&b[..48]),
            "6f4b849e6fedad0e1e0cea1bbed3eb5d55ad1e2474cfaa823a74b62dccf96ee5"
        );
        assert_eq!(
            crate::checksum::sha256_hex(&b[48..56 + 80 * 201 * 4]),
            "97d22dd3c65bc0c664ed23acdb68b6528ab5517f6861852571ae1cad6350eab7"
        );
    }

    #[test]
    fn tensor_count_matches_whisper_cpp() {
        // whisper.cpp: 10 (input) + 15 + 15·audio_layers + 24·text_layers is
        // its allocation bound; the real count is 11 + 15·a + 24·t.
        assert_eq!(Dims::TINY_EN.tensor_count(), 11 + 15 * 4 + 24 * 4);
        assert_eq!(
            tensor_layout(&Dims::TINY_EN).len(),
            Dims::TINY_EN.tensor_count()
        );
        assert_eq!(test_vocabulary().len(), FILE_VOCAB);
    }
}
