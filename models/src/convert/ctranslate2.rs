//! Reading CTranslate2's `model.bin` (binary format version 6, as
//! `ctranslate2.specs.ModelSpec` writes it and faster-whisper ships it).
//!
//! ```text
//! u32 version (6)
//! str spec name ("WhisperSpec"), u32 spec revision
//! u32 n;  n × (str name, u8 rank, u32 × rank shape, u8 dtype, u32 bytes, data)
//! u32 m;  m × (str alias, str variable)      names that share another's data
//! str: u16 length including a NUL, the bytes, the NUL
//! ```
//! Every length is checked against the file before it is used, so a
//! truncated or foreign file is an error that says where it went wrong.

use std::path::{Path, PathBuf};

use crate::ModelError;

/// The format version this reader understands.
pub const BINARY_VERSION: u32 = 6;

/// A variable's element type (CTranslate2's `DataType` numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_id(id: u8) -> Option<DType> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One variable: where its data is in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    offset: usize,
    len: usize,
}

impl Variable {
    /// Number of elements (1 for a scalar).
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A parsed `model.bin`, its data kept in memory.
#[derive(Debug)]
pub struct Model {
    path: PathBuf,
    data: Vec<u8>,
    /// The spec's class name (`WhisperSpec`) and revision.
    pub spec: String,
    pub revision: u32,
    pub variables: Vec<Variable>,
    /// alias → the variable it stands for.
    pub aliases: Vec<(String, String)>,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ModelError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(ModelError::corrupt(
                self.path,
                format!(
                    "file ends inside {what} (byte {}, {n} bytes needed, {} left): truncated?",
                    self.pos,
                    self.data.len() - self.pos
                ),
            ));
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8, ModelError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, ModelError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, ModelError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, what: &str) -> Result<String, ModelError> {
        let n = usize::from(self.u16(what)?);
        let b = self.take(n, what)?;
        match b.split_last() {
            Some((0, s)) => String::from_utf8(s.to_vec())
                .map_err(|_| ModelError::corrupt(self.path, format!("{what} is not UTF-8"))),
            _ => Err(ModelError::corrupt(
                self.path,
                format!(
                    "{what} at byte {} is not a NUL-terminated string",
                    self.pos - n
                ),
            )),
        }
    }
}

impl Model {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Model, ModelError> {
        let data = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        Model::parse(path, data)
    }

    /// Parses the bytes of a `model.bin` (`path` names it in errors).
    pub fn parse(path: &Path, data: Vec<u8>) -> Result<Model, ModelError> {
        let mut c = Cursor {
            data: &data,
            pos: 0,
            path,
        };
        let version = c.u32("the format version")?;
        if version != BINARY_VERSION {
            return Err(ModelError::corrupt(
                path,
                format!(
                    "CTranslate2 binary version {version}; this reader knows version {BINARY_VERSION}"
                ),
            ));
        }
        let spec = c.string("the spec name")?;
        let revision = c.u32("the spec revision")?;
        let n = c.u32("the variable count")? as usize;
        // Each variable takes at least 9 bytes: a count beyond that is garbage.
        if n > data.len() / 9 {
            return Err(ModelError::corrupt(
                path,
                format!("{n} variables in {} bytes", data.len()),
            ));
        }
        let mut variables = Vec::with_capacity(n);
        for i in 0..n {
            let what = format!("variable {i}");
            let name = c.string(&what)?;
            let rank = c.u8(&what)?;
            let mut shape = Vec::with_capacity(usize::from(rank));
            for _ in 0..rank {
                shape.push(c.u32(&what)? as usize);
            }
            let id = c.u8(&what)?;
            let dtype = DType::from_id(id)
                .ok_or_else(|| ModelError::corrupt(path, format!("`{name}` has data type {id}")))?;
            let len = c.u32(&what)? as usize;
            let elements = shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .and_then(|e| e.checked_mul(dtype.size()));
            if elements != Some(len) {
                return Err(ModelError::corrupt(
                    path,
                    format!("`{name}`: shape {shape:?} of {dtype:?} does not take {len} bytes"),
                ));
            }
            let offset = c.pos;
            c.take(len, &format!("the data of `{name}`"))?;
            variables.push(Variable {
                name,
                shape,
                dtype,
                offset,
                len,
            });
        }
        let m = c.u32("the alias count")? as usize;
        if m > data.len() / 6 {
            return Err(ModelError::corrupt(
                path,
                format!("{m} aliases in {} bytes", data.len()),
            ));
        }
        let mut aliases = Vec::with_capacity(m);
        for i in 0..m {
            let alias = c.string(&format!("alias {i}"))?;
            let target = c.string(&format!("alias {i}"))?;
            if !variables.iter().any(|v| v.name == target) {
                return Err(ModelError::corrupt(
                    path,
                    format!("alias `{alias}` names `{target}`, which is not in the file"),
                ));
            }
            aliases.push((alias, target));
        }
        if c.pos != data.len() {
            return Err(ModelError::corrupt(
                path,
                format!("{} bytes after the alias table", data.len() - c.pos),
            ));
        }
        Ok(Model {
            path: path.to_path_buf(),
            data,
            spec,
            revision,
            variables,
            aliases,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A variable by name, following the alias table.
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        let name = self
            .aliases
            .iter()
            .find(|(a, _)| a == name)
            .map_or(name, |(_, t)| t.as_str());
        self.variables.iter().find(|v| v.name == name)
    }

    /// Whether `name` is an alias (shares another variable's data).
    pub fn is_alias(&self, name: &str) -> bool {
        self.aliases.iter().any(|(a, _)| a == name)
    }

    /// A variable's raw little-endian bytes.
    pub fn bytes(&self, v: &Variable) -> &[u8] {
        &self.data[v.offset..v.offset + v.len]
    }

    /// A floating-point variable's values as f32 (exact for f16 and bf16).
    pub fn floats(&self, v: &Variable) -> Result<Vec<f32>, ModelError> {
        let b = self.bytes(v);
        Ok(match v.dtype {
            DType::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => b
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(ModelError::Convert {
                    path: self.path.clone(),
                    reason: format!(
                        "`{}` is {other:?}: quantised models (int8) cannot be converted; \
                         use a float16 or float32 model",
                        v.name
                    ),
                })
            }
        })
    }

    /// An integer scalar (flags and head counts).
    pub fn int_scalar(&self, name: &str) -> Option<i64> {
        let v = self.variable(name)?;
        if v.elements() != 1 {
            return None;
        }
        let b = self.bytes(v);
        Some(match v.dtype {
            DType::I8 => i64::from(b[0] as i8),
            DType::I16 => i64::from(i16::from_le_bytes([b[0], b[1]])),
            DType::I32 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            _ => return None,
        })
    }
}

/// Writes a `model.bin` (for tests: the converter's fixtures are generated).
/// `variables` are (name, shape, dtype, little-endian bytes).
pub fn write(
    path: &Path,
    spec: &str,
    revision: u32,
    variables: &[(String, Vec<usize>, DType, Vec<u8>)],
    aliases: &[(String, String)],
) -> std::io::Result<()> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&BINARY_VERSION.to_le_bytes());
    string(&mut out, spec);
    out.extend_from_slice(&revision.to_le_bytes());
    out.extend_from_slice(&(variables.len() as u32).to_le_bytes());
    for (name, shape, dtype, data) in variables {
        string(&mut out, name);
        out.push(shape.len() as u8);
        for d in shape {
            out.extend_from_slice(&(*d as u32).to_le_bytes());
        }
        out.push(match dtype {
            DType::F32 => 0,
            DType::I8 => 1,
            DType::I16 => 2,
            DType::I32 => 3,
            DType::F16 => 4,
            DType::BF16 => 5,
        });
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
    for (a, t) in aliases {
        string(&mut out, a);
        string(&mut out, t);
    }
    std::fs::write(path, out)
}
