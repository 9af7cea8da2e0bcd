//! CTranslate2's `WhisperSpec` to whisper.cpp's ggml model: which
//! CTranslate2 variable (or which rows of a fused one) each ggml tensor is,
//! the hyper-parameters, and the vocabulary.
//!
//! The mapping (CTranslate2 names `encoder/layer_N/...`, `decoder/layer_N/...`):
//! - `self_attention/linear_0` is Q, K and V stacked (3n rows): ggml's
//!   `attn.query`, `attn.key`, `attn.value`; whisper has no key bias, so the
//!   K third of the bias must be zero (checked, the import refuses otherwise);
//! - decoder `attention/linear_0` is the cross-attention query, `linear_1`
//!   K and V stacked (K bias zero), `linear_2` the output (`cross_attn.out`);
//!   self-attention `linear_1` is `attn.out`; `ffn/linear_0|1` are `mlp.0|2`;
//! - `layer_norm/gamma|beta` are `weight|bias`; `encoder/layer_norm` is
//!   `encoder.ln_post`, `decoder/layer_norm` is `decoder.ln`;
//! - `*/position_encodings/encodings` are the positional embeddings,
//!   `decoder/embeddings/weight` the token embedding; the output projection
//!   must be tied to it (an alias, or equal data), as whisper.cpp ties it.
//!
//! The vocabulary (`vocabulary.txt`, one token a line, or `vocabulary.json`)
//! is in GPT-2's byte-to-unicode spelling (`Ġthe`); ggml stores the bytes
//! (` the`), the tokens up to and including `<|endoftext|>` (whisper.cpp
//! derives the special tokens after it from `n_vocab`).

use std::collections::HashSet;
use std::path::Path;

use super::ctranslate2::{Model, Variable};
use crate::asr::ggml::{Dims, TensorSpec};
use crate::ModelError;

/// What a ggml tensor is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The CTranslate2 variable.
    pub variable: String,
    /// Which part of its first dimension: `part` of `parts` equal slices.
    pub part: usize,
    pub parts: usize,
}

impl Source {
    fn whole(v: String) -> Self {
        Source {
            variable: v,
            part: 0,
            parts: 1,
        }
    }
    fn slice(v: String, part: usize, parts: usize) -> Self {
        Source {
            variable: v,
            part,
            parts,
        }
    }
}

/// The CTranslate2 source of ggml tensor `name`, or `None` for a name this
/// mapping does not know.
pub fn source(name: &str) -> Option<Source> {
    let simple = |v: &str| Some(Source::whole(v.to_string()));
    match name {
        "encoder.positional_embedding" => return simple("encoder/position_encodings/encodings"),
        "decoder.positional_embedding" => return simple("decoder/position_encodings/encodings"),
        "decoder.token_embedding.weight" => return simple("decoder/embeddings/weight"),
        "encoder.ln_post.weight" => return simple("encoder/layer_norm/gamma"),
        "encoder.ln_post.bias" => return simple("encoder/layer_norm/beta"),
        "decoder.ln.weight" => return simple("decoder/layer_norm/gamma"),
        "decoder.ln.bias" => return simple("decoder/layer_norm/beta"),
        _ => {}
    }
    if let Some(rest) = name.strip_prefix("encoder.conv") {
        let (n, what) = rest.split_once('.')?;
        return simple(&format!("encoder/conv{n}/{what}"));
    }
    // encoder.blocks.3.attn.query.weight → ("encoder", "3", "attn.query.weight")
    let (side, rest) = name.split_once(".blocks.")?;
    let (layer, tensor) = rest.split_once('.')?;
    let base = format!("{side}/layer_{layer}");
    let (module, what) = tensor.rsplit_once('.')?;
    let norm = |m: &str| match what {
        "weight" => Some(Source::whole(format!("{base}/{m}/layer_norm/gamma"))),
        "bias" => Some(Source::whole(format!("{base}/{m}/layer_norm/beta"))),
        _ => None,
    };
    let cross = side == "decoder";
    let v = |m: &str| format!("{base}/{m}/{what}");
    match module {
        "attn_ln" => norm("self_attention"),
        "mlp_ln" => norm("ffn"),
        "cross_attn_ln" if cross => norm("attention"),
        "mlp.0" => Some(Source::whole(v("ffn/linear_0"))),
        "mlp.2" => Some(Source::whole(v("ffn/linear_1"))),
        "attn.query" => Some(Source::slice(v("self_attention/linear_0"), 0, 3)),
        "attn.key" => Some(Source::slice(v("self_attention/linear_0"), 1, 3)),
        "attn.value" => Some(Source::slice(v("self_attention/linear_0"), 2, 3)),
        "attn.out" => Some(Source::whole(v("self_attention/linear_1"))),
        "cross_attn.query" if cross => Some(Source::whole(v("attention/linear_0"))),
        "cross_attn.key" if cross => Some(Source::slice(v("attention/linear_1"), 0, 2)),
        "cross_attn.value" if cross => Some(Source::slice(v("attention/linear_1"), 1, 2)),
        "cross_attn.out" if cross => Some(Source::whole(v("attention/linear_2"))),
        _ => None,
    }
}

/// The bias whisper.cpp has no slot for next to key weight `name`: the
/// fused bias variable and the part of it that must be zero.
fn dropped_bias(name: &str) -> Option<Source> {
    if !name.ends_with(".key.weight") {
        return None;
    }
    let s = source(name)?;
    Some(Source {
        variable: s.variable.strip_suffix("/weight")?.to_string() + "/bias",
        ..s
    })
}

fn count_layers(m: &Model, side: &str) -> i32 {
    let mut n = 0;
    while m
        .variable(&format!("{side}/layer_{n}/ffn/linear_0/weight"))
        .is_some()
    {
        n += 1;
    }
    n
}

fn need<'m>(m: &'m Model, name: &str) -> Result<&'m Variable, ModelError> {
    m.variable(name)
        .ok_or_else(|| ModelError::corrupt(m.path(), format!("no variable `{name}`")))
}

fn dim(v: &Variable, i: usize) -> Result<i32, ModelError> {
    v.shape
        .get(i)
        .and_then(|&d| i32::try_from(d).ok())
        .ok_or_else(|| ModelError::Config(format!("`{}` has shape {:?}", v.name, v.shape)))
}

/// The ggml hyper-parameters of a WhisperSpec model (f16 output), after
/// checking the flags that would make whisper.cpp compute something else.
pub fn dims(m: &Model, n_vocab: usize) -> Result<Dims, ModelError> {
    let convert = |reason: String| ModelError::Convert {
        path: m.path().to_path_buf(),
        reason,
    };
    if m.spec != "WhisperSpec" {
        return Err(convert(format!(
            "spec `{}`; only WhisperSpec models convert to ggml whisper",
            m.spec
        )));
    }
    for (flag, want) in [
        ("decoder/scale_embeddings", 0),
        ("decoder/pre_norm", 1),
        ("decoder/alibi", 0),
        // CTranslate2's ActivationType::GELU.
        ("decoder/activation", 3),
    ] {
        if let Some(v) = m.int_scalar(flag) {
            if v != want {
                return Err(convert(format!(
                    "`{flag}` is {v}; whisper.cpp computes the model as if it were {want}"
                )));
            }
        }
    }
    let conv1 = need(m, "encoder/conv1/weight")?;
    let enc_pos = need(m, "encoder/position_encodings/encodings")?;
    let dec_pos = need(m, "decoder/position_encodings/encodings")?;
    let emb = need(m, "decoder/embeddings/weight")?;
    let heads = |side: &str| -> Result<i32, ModelError> {
        m.int_scalar(&format!("{side}/num_heads"))
            .and_then(|h| i32::try_from(h).ok())
            .ok_or_else(|| ModelError::corrupt(m.path(), format!("no integer `{side}/num_heads`")))
    };
    let bad = |e: ModelError| ModelError::corrupt(m.path(), e.to_string());
    if emb.shape.first() != Some(&n_vocab) {
        return Err(ModelError::corrupt(
            m.path(),
            format!(
                "the vocabulary has {n_vocab} tokens, decoder/embeddings/weight {:?} rows",
                emb.shape.first()
            ),
        ));
    }
    let d = Dims {
        n_vocab: i32::try_from(n_vocab)
            .map_err(|_| ModelError::corrupt(m.path(), "vocabulary too large"))?,
        n_audio_ctx: dim(enc_pos, 0).map_err(bad)?,
        n_audio_state: dim(conv1, 0).map_err(bad)?,
        n_audio_head: heads("encoder")?,
        n_audio_layer: count_layers(m, "encoder"),
        n_text_ctx: dim(dec_pos, 0).map_err(bad)?,
        n_text_state: dim(emb, 1).map_err(bad)?,
        n_text_head: heads("decoder")?,
        n_text_layer: count_layers(m, "decoder"),
        n_mels: dim(conv1, 1).map_err(bad)?,
        ftype: 1,
    };
    if d.n_audio_layer == 0 || d.n_text_layer == 0 {
        return Err(ModelError::corrupt(
            m.path(),
            "no encoder or decoder layers",
        ));
    }
    Ok(d)
}

/// The values of ggml tensor `spec` from the model, checked for shape.
pub fn values(m: &Model, spec: &TensorSpec) -> Result<Vec<f32>, ModelError> {
    let src = source(&spec.name).ok_or_else(|| {
        ModelError::Config(format!(
            "converter: no source for ggml tensor `{}`",
            spec.name
        ))
    })?;
    let v = need(m, &src.variable)?;
    let part = slice(m, v, &src)?;
    if part.len() != spec.elements() {
        return Err(ModelError::corrupt(
            m.path(),
            format!(
                "`{}` {:?} (part {} of {}) has {} values; ggml `{}` {:?} needs {}",
                v.name,
                v.shape,
                src.part + 1,
                src.parts,
                part.len(),
                spec.name,
                spec.ne,
                spec.elements()
            ),
        ));
    }
    Ok(part)
}

fn slice(m: &Model, v: &Variable, src: &Source) -> Result<Vec<f32>, ModelError> {
    let all = m.floats(v)?;
    let rows = v.shape.first().copied().unwrap_or(1);
    if rows % src.parts != 0 {
        return Err(ModelError::corrupt(
            m.path(),
            format!(
                "`{}` {:?} does not split into {} parts",
                v.name, v.shape, src.parts
            ),
        ));
    }
    let per = all.len() / src.parts;
    Ok(all[src.part * per..(src.part + 1) * per].to_vec())
}

/// Checks what the conversion leaves out: the key biases must be zero, the
/// output projection tied to the token embedding (and without a bias), and
/// no weight may go unused.
pub fn check_dropped(m: &Model, specs: &[TensorSpec]) -> Result<(), ModelError> {
    let convert = |reason: String| ModelError::Convert {
        path: m.path().to_path_buf(),
        reason,
    };
    let mut used: HashSet<String> = HashSet::new();
    for spec in specs {
        if let Some(s) = source(&spec.name) {
            used.insert(s.variable);
        }
        if let Some(b) = dropped_bias(&spec.name) {
            let v = need(m, &b.variable)?;
            let part = slice(m, v, &b)?;
            if let Some(worst) = part.iter().map(|x| x.abs()).reduce(f32::max) {
                if worst != 0.0 {
                    return Err(convert(format!(
                        "the key part of `{}` is not zero (largest |value| {worst}); \
                         whisper.cpp has no key bias, so this model would compute differently",
                        b.variable
                    )));
                }
            }
            used.insert(b.variable);
        }
    }
    const PROJECTION: &str = "decoder/projection/weight";
    if !m.is_alias(PROJECTION) {
        if let Some(p) = m.variable(PROJECTION) {
            let emb = need(m, "decoder/embeddings/weight")?;
            if m.floats(p)? != m.floats(emb)? {
                return Err(convert(format!(
                    "`{PROJECTION}` differs from decoder/embeddings/weight; whisper.cpp ties the \
                     output projection to the token embedding"
                )));
            }
            used.insert(PROJECTION.to_string());
        }
    }
    if let Some(b) = m.variable("decoder/projection/bias") {
        if m.floats(b)?.iter().any(|&x| x != 0.0) {
            return Err(convert(
                "`decoder/projection/bias` is not zero; whisper.cpp has no output bias".into(),
            ));
        }
        used.insert(b.name.clone());
    }
    // Scalars are flags and counts (checked in `dims`); anything bigger
    // that nothing maps would be silently lost.
    if let Some(v) = m.variables.iter().find(|v| {
        v.elements() > 1 && !used.contains(&v.name) && v.name != "decoder/alignment_heads"
    }) {
        return Err(convert(format!(
            "variable `{}` {:?} has no place in a ggml whisper model",
            v.name, v.shape
        )));
    }
    Ok(())
}

/// GPT-2's byte-to-unicode table, inverted: the character each byte is
/// spelt with in the vocabulary → the byte.
fn unicode_to_byte() -> std::collections::HashMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xa1..=0xac)
        .chain(0xae..=0xff)
        .collect();
    let mut chars = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    printable
        .into_iter()
        .zip(chars)
        .filter_map(|(b, c)| Some((char::from_u32(c)?, b as u8)))
        .collect()
}

/// Reads the vocabulary of a CTranslate2 model directory: all tokens (their
/// count is `n_vocab`) and the bytes of those stored in the ggml file.
pub fn vocabulary(dir: &Path) -> Result<(usize, Vec<Vec<u8>>), ModelError> {
    let txt = dir.join("vocabulary.txt");
    let json = dir.join("vocabulary.json");
    let tokens: Vec<String> = if txt.exists() {
        let s = std::fs::read_to_string(&txt).map_err(|e| ModelError::io(&txt, e))?;
        let mut t: Vec<String> = s
            .split('\n')
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect();
        if t.last().is_some_and(|l| l.is_empty()) {
            t.pop();
        }
        t
    } else if json.exists() {
        let s = std::fs::read_to_string(&json).map_err(|e| ModelError::io(&json, e))?;
        serde_json::from_str(&s)
            .map_err(|e| ModelError::corrupt(&json, format!("not a JSON list of tokens: {e}")))?
    } else {
        return Err(ModelError::corrupt(
            dir,
            "no vocabulary.txt or vocabulary.json next to model.bin",
        ));
    };
    let path = if txt.exists() { txt } else { json };
    let Some(eot) = tokens.iter().position(|t| t == "<|endoftext|>") else {
        return Err(ModelError::corrupt(&path, "no <|endoftext|> token"));
    };
    let table = unicode_to_byte();
    let mut stored = Vec::with_capacity(eot + 1);
    for (i, t) in tokens[..=eot].iter().enumerate() {
        let bytes: Option<Vec<u8>> = t.chars().map(|c| table.get(&c).copied()).collect();
        let Some(bytes) = bytes else {
            return Err(ModelError::corrupt(
                &path,
                format!("token {i} `{t}` is not in GPT-2's byte spelling"),
            ));
        };
        stored.push(bytes);
    }
    Ok((tokens.len(), stored))
}
