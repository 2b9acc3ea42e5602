//! Loading a GGUF model and reading its metadata.

use super::backend::last_log_errors;
use super::error::{detail_from_log, LlamaError};
use super::rpc::RpcServers;
use super::sys;
use super::vocab::Vocab;
use std::ffi::{c_void, CStr, CString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

/// How to load a model.
#[derive(Debug, Clone)]
pub struct ModelParams {
    /// Layers to offload to the GPU (0 on CPU-only builds; -1 = all).
    pub n_gpu_layers: i32,
    /// Show a progress bar while the weights load.
    pub progress: bool,
}

impl Default for ModelParams {
    fn default() -> Self {
        Self {
            n_gpu_layers: -1,
            progress: false,
        }
    }
}

/// Which devices a model's offloaded layers go to (see [`Model::load_placed`]); the default is
/// llama.cpp's own choice (this machine's GPUs, none on a CPU build).
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// Offload to these RPC servers' devices first, then to this machine's GPUs.
    pub rpc: Option<RpcServers>,
    /// Share of the offloaded layers per device, in device order (RPC devices first); empty =
    /// in proportion to each device's free memory. As llama.cpp's `--tensor-split`.
    pub tensor_split: Vec<f32>,
}

impl Placement {
    /// llama.cpp reads `llama_max_devices()` values: zero-filled beyond the given ones.
    fn tensor_split_array(&self) -> Result<Option<Vec<f32>>, LlamaError> {
        if self.tensor_split.is_empty() {
            return Ok(None);
        }
        // SAFETY: a constant of the library.
        let max = unsafe { sys::llama_max_devices() };
        if self.tensor_split.len() > max {
            return Err(LlamaError::TensorSplit(format!(
                "{} values, but llama.cpp handles at most {max} devices",
                self.tensor_split.len()
            )));
        }
        if let Some(bad) = self.tensor_split.iter().find(|v| !v.is_finite() || **v < 0.0) {
            return Err(LlamaError::TensorSplit(format!(
                "{bad} is not a share (use non-negative numbers such as 3,1)"
            )));
        }
        if self.tensor_split.iter().all(|&v| v == 0.0) {
            return Err(LlamaError::TensorSplit("every share is 0".into()));
        }
        let mut split = self.tensor_split.clone();
        split.resize(max, 0.0);
        Ok(Some(split))
    }
}

/// A loaded model; freed on drop. Contexts borrow it.
pub struct Model {
    ptr: NonNull<sys::llama_model>,
    path: PathBuf,
}

// SAFETY: a llama_model is immutable after loading and llama.cpp allows using it from any thread.
unsafe impl Send for Model {}
// SAFETY: as above; all methods take &self and only read.
unsafe impl Sync for Model {}

unsafe extern "C" fn progress_callback(progress: f32, user: *mut c_void) -> bool {
    // SAFETY: `user` is the &indicatif::ProgressBar passed by Model::load, alive during loading.
    let bar = unsafe { &*(user as *const indicatif::ProgressBar) };
    bar.set_position((progress * 100.0) as u64);
    true
}

fn check_gguf(path: &Path) -> Result<(), LlamaError> {
    if !path.exists() {
        return Err(LlamaError::ModelNotFound(path.to_path_buf()));
    }
    if path.is_dir() {
        return Err(LlamaError::IsADirectory(path.to_path_buf()));
    }
    let io = |error| LlamaError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(io)?;
    let n = file.read(&mut magic).map_err(io)?;
    if &magic[..n] != b"GGUF" {
        return Err(LlamaError::NotGguf {
            path: path.to_path_buf(),
            magic: String::from_utf8_lossy(&magic[..n]).into_owned(),
        });
    }
    Ok(())
}

/// llama.cpp's LLAMA_MAX_LAYERS: its loader asserts (aborts) on a block count outside 1..=512.
const MAX_LAYERS: u64 = 512;

/// Check the GGUF metadata values that llama.cpp checks with GGML_ASSERT (an abort, not an
/// error) while loading or at the first decode, so that a corrupted file ends in a message:
/// `<arch>.block_count` outside 1..=512 (asserted in load_hparams) and a norm epsilon that is
/// negative or NaN (asserted by the norm ops at the first decode). Found by mutating the default
/// model (examples/mutate_models.rs, docs/results/robustness-2026-12-02.md).
///
/// Only well-formed values are judged: a header that does not parse is left to llama.cpp's GGUF
/// reader, which reports every such corruption as an error.
fn check_gguf_metadata(path: &Path) -> Result<(), LlamaError> {
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut r = GgufReader {
        inner: std::io::BufReader::new(file),
        left: len,
    };
    let invalid = |detail: String| LlamaError::InvalidModel {
        path: path.to_path_buf(),
        detail,
    };
    let Some(GgufHeader { kv: meta, tensors }) = r.metadata() else {
        return Ok(());
    };
    // Norm weights are the second operand of an F32 multiplication, which ggml's CPU backend
    // supports for F32 operands only (GGML_ASSERT at the first decode). Converters and the
    // quantizer keep them F32, so another type means a corrupted file.
    if let Some((name, t)) = tensors
        .iter()
        .find(|(name, t)| name.ends_with("norm.weight") && *t != 0)
    {
        return Err(invalid(format!(
            "tensor {name} has type {t}; norm weights must be F32 (type 0)"
        )));
    }
    let Some(GgufValue::Text(arch)) = meta.iter().find(|(k, _)| k == "general.architecture").map(|(_, v)| v) else {
        return Ok(());
    };
    for (key, value) in &meta {
        let Some(name) = key.strip_prefix(arch.as_str()).and_then(|k| k.strip_prefix('.')) else {
            continue;
        };
        match (name, value) {
            ("block_count", GgufValue::Int(n)) if !(1..=MAX_LAYERS as i128).contains(n) => {
                return Err(invalid(format!(
                    "{key} is {n}; llama.cpp supports 1 to {MAX_LAYERS} layers"
                )));
            }
            ("attention.layer_norm_rms_epsilon" | "attention.layer_norm_epsilon", GgufValue::Float(eps))
                if !(eps.is_finite() && *eps >= 0.0) =>
            {
                return Err(invalid(format!(
                    "{key} is {eps}; a norm epsilon must be finite and not negative"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// What [`check_gguf_metadata`] reads: the key-value pairs and (name, type) of each tensor.
struct GgufHeader {
    kv: Vec<(String, GgufValue)>,
    tensors: Vec<(String, u32)>,
}

enum GgufValue {
    Int(i128),
    Float(f64),
    Text(String),
    Other,
}

/// Reads GGUF metadata, never past the file's length (a corrupted length must not make it
/// allocate or skip gigabytes).
struct GgufReader {
    inner: std::io::BufReader<std::fs::File>,
    left: u64,
}

impl GgufReader {
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut b = [0u8; N];
        self.left = self.left.checked_sub(N as u64)?;
        self.inner.read_exact(&mut b).ok()?;
        Some(b)
    }

    fn u32(&mut self) -> Option<u32> {
        self.bytes::<4>().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.bytes::<8>().map(u64::from_le_bytes)
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        self.left = self.left.checked_sub(n)?;
        self.inner.seek_relative(i64::try_from(n).ok()?).ok()
    }

    fn string(&mut self) -> Option<String> {
        let n = self.u64()?;
        // Keys and the few string values read here are short; a longer one is a corruption
        // for llama.cpp to report.
        if n > self.left || n > 1 << 20 {
            return None;
        }
        let mut b = vec![0u8; n as usize];
        self.left -= n;
        self.inner.read_exact(&mut b).ok()?;
        Some(String::from_utf8_lossy(&b).into_owned())
    }

    /// A value of GGUF type `t` (arrays are skipped).
    fn value(&mut self, t: u32) -> Option<GgufValue> {
        Some(match t {
            0 | 7 => GgufValue::Int(self.bytes::<1>()?[0] as i128),
            1 => GgufValue::Int(self.bytes::<1>()?[0] as i8 as i128),
            2 => GgufValue::Int(u16::from_le_bytes(self.bytes()?) as i128),
            3 => GgufValue::Int(i16::from_le_bytes(self.bytes()?) as i128),
            4 => GgufValue::Int(self.u32()? as i128),
            5 => GgufValue::Int(i32::from_le_bytes(self.bytes()?) as i128),
            6 => GgufValue::Float(f32::from_le_bytes(self.bytes()?) as f64),
            8 => GgufValue::Text(self.string()?),
            9 => {
                let (et, n) = (self.u32()?, self.u64()?);
                let size: u64 = match et {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    10..=12 => 8,
                    8 => {
                        for _ in 0..n {
                            let len = self.u64()?;
                            self.skip(len)?;
                        }
                        return Some(GgufValue::Other);
                    }
                    _ => return None,
                };
                self.skip(n.checked_mul(size)?)?;
                GgufValue::Other
            }
            10 => GgufValue::Int(self.u64()? as i128),
            11 => GgufValue::Int(i64::from_le_bytes(self.bytes()?) as i128),
            12 => GgufValue::Float(f64::from_le_bytes(self.bytes()?)),
            _ => return None,
        })
    }

    /// All key-value pairs (arrays as `Other`) and the (name, type) of every tensor whose info
    /// parses; None if the key-value part does not parse.
    fn metadata(&mut self) -> Option<GgufHeader> {
        if &self.bytes::<4>()? != b"GGUF" || !matches!(self.u32()?, 2 | 3) {
            return None;
        }
        let n_tensors = self.u64()?;
        let n_kv = self.u64()?;
        let mut kv = Vec::new();
        for _ in 0..n_kv {
            let key = self.string()?;
            let t = self.u32()?;
            kv.push((key, self.value(t)?));
        }
        let mut tensors = Vec::new();
        for _ in 0..n_tensors {
            let Some(info) = self.tensor_info() else { break };
            tensors.push(info);
        }
        Some(GgufHeader { kv, tensors })
    }

    /// (name, type) of one tensor info: name, n_dims u32, dims u64 × n_dims, type u32, offset u64.
    fn tensor_info(&mut self) -> Option<(String, u32)> {
        let name = self.string()?;
        let n_dims = self.u32()?;
        if n_dims > 4 {
            return None;
        }
        self.skip(8 * n_dims as u64)?;
        let t = self.u32()?;
        self.u64()?;
        Some((name, t))
    }
}

impl Model {
    /// Load a GGUF file. The file is checked first so that common mistakes get a clear message.
    pub fn load(path: &Path, params: &ModelParams) -> Result<Model, LlamaError> {
        Self::load_placed(path, params, &Placement::default())
    }

    /// Load a GGUF file with its offloaded layers (`n_gpu_layers`) on the given devices.
    pub fn load_placed(path: &Path, params: &ModelParams, placement: &Placement) -> Result<Model, LlamaError> {
        check_gguf(path)?;
        check_gguf_metadata(path)?;
        let tensor_split = placement.tensor_split_array()?;
        // NULL-terminated; None keeps llama.cpp's default device selection
        let mut devices = placement.rpc.as_ref().map(RpcServers::offload_devices);
        let c_path = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| LlamaError::InvalidText("model path contains a NUL byte".into()))?;
        let bar = if params.progress {
            let bar = indicatif::ProgressBar::new(100).with_style(
                indicatif::ProgressStyle::with_template("loading model {bar:30} {pos:>3}%")
                    .expect("static template is valid"),
            );
            Some(bar)
        } else {
            None
        };
        // SAFETY: default params are plain data.
        let mut mp = unsafe { sys::llama_model_default_params() };
        mp.n_gpu_layers = params.n_gpu_layers;
        if let Some(devices) = devices.as_mut() {
            mp.devices = devices.as_mut_ptr();
        }
        if let Some(split) = &tensor_split {
            mp.tensor_split = split.as_ptr();
        }
        if let Some(bar) = &bar {
            mp.progress_callback = Some(progress_callback);
            mp.progress_callback_user_data = bar as *const _ as *mut c_void;
        }
        last_log_errors();
        // SAFETY: c_path is NUL-terminated; the progress user data, the NULL-terminated device
        // list and the llama_max_devices() split values outlive the call (llama.cpp copies both
        // lists into the model).
        let ptr = unsafe { sys::llama_model_load_from_file(c_path.as_ptr(), mp) };
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let ptr = NonNull::new(ptr).ok_or_else(|| LlamaError::ModelLoad {
            path: path.to_path_buf(),
            detail: detail_from_log(&last_log_errors()),
        })?;
        Ok(Model {
            ptr,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::llama_model {
        self.ptr.as_ptr()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn vocab(&self) -> Vocab<'_> {
        // SAFETY: the vocab pointer is owned by the model and valid as long as it is.
        let ptr = unsafe { sys::llama_model_get_vocab(self.ptr.as_ptr()) };
        Vocab::new(NonNull::new(ptr as *mut _).expect("a loaded model has a vocab"))
    }

    pub fn n_layer(&self) -> usize {
        // SAFETY: valid model pointer.
        unsafe { sys::llama_model_n_layer(self.ptr.as_ptr()) as usize }
    }

    pub fn n_head(&self) -> usize {
        // SAFETY: valid model pointer.
        unsafe { sys::llama_model_n_head(self.ptr.as_ptr()) as usize }
    }

    pub fn n_ctx_train(&self) -> u32 {
        // SAFETY: valid model pointer.
        unsafe { sys::llama_model_n_ctx_train(self.ptr.as_ptr()) as u32 }
    }

    /// Size of the sliding attention window (0 when the model has none).
    pub fn n_swa(&self) -> u32 {
        // SAFETY: valid model pointer.
        unsafe { sys::llama_model_n_swa(self.ptr.as_ptr()) as u32 }
    }

    pub fn size_bytes(&self) -> u64 {
        // SAFETY: valid model pointer.
        unsafe { sys::llama_model_size(self.ptr.as_ptr()) }
    }

    /// Short description, e.g. "llama 135M Q4_1".
    pub fn description(&self) -> String {
        let mut buf = vec![0u8; 256];
        // SAFETY: buf is writable for its length; llama.cpp NUL-terminates within it.
        let n = unsafe { sys::llama_model_desc(self.ptr.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        buf.truncate(n.clamp(0, 255) as usize);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// The model's built-in chat template (GGUF `tokenizer.chat_template`), if any.
    pub fn chat_template_source(&self) -> Option<CString> {
        // SAFETY: valid model pointer; NULL name = default template; the result is owned by the model.
        let ptr = unsafe { sys::llama_model_chat_template(self.ptr.as_ptr(), std::ptr::null()) };
        if ptr.is_null() {
            None
        } else {
            // SAFETY: non-null, NUL-terminated, valid while the model lives; we copy it.
            Some(unsafe { CStr::from_ptr(ptr) }.to_owned())
        }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: we own the pointer; contexts borrowing the model are gone (lifetimes).
        unsafe { sys::llama_model_free(self.ptr.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF header with an architecture, a block count, an RMS-norm epsilon and one norm tensor.
    fn gguf(block_count: u32, eps: f32, norm_type: u32) -> PathBuf {
        fn string(b: &mut Vec<u8>, s: &str) {
            b.extend((s.len() as u64).to_le_bytes());
            b.extend(s.as_bytes());
        }
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        b.extend(3u64.to_le_bytes());
        string(&mut b, "general.architecture");
        b.extend(8u32.to_le_bytes());
        string(&mut b, "llama");
        string(&mut b, "llama.block_count");
        b.extend(4u32.to_le_bytes());
        b.extend(block_count.to_le_bytes());
        string(&mut b, "llama.attention.layer_norm_rms_epsilon");
        b.extend(6u32.to_le_bytes());
        b.extend(eps.to_le_bytes());
        string(&mut b, "output_norm.weight");
        b.extend(1u32.to_le_bytes());
        b.extend(4u64.to_le_bytes());
        b.extend(norm_type.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend([0u8; 48]);
        let path = std::env::temp_dir().join(format!(
            "spotlight-check-{}-{block_count}-{}-{norm_type}.gguf",
            std::process::id(),
            eps.to_bits()
        ));
        std::fs::write(&path, b).unwrap();
        path
    }

    fn check(block_count: u32, eps: f32, norm_type: u32) -> Result<(), String> {
        let path = gguf(block_count, eps, norm_type);
        let result = check_gguf_metadata(&path).map_err(|e| e.to_string());
        let _ = std::fs::remove_file(path);
        result
    }

    #[test]
    fn metadata_that_llama_cpp_aborts_on_is_an_error() {
        assert_eq!(check(30, 1e-5, 0), Ok(()));
        assert!(check(0, 1e-5, 0).unwrap_err().contains("llama.block_count is 0"));
        assert!(check(513, 1e-5, 0).unwrap_err().contains("1 to 512 layers"));
        assert!(check(30, -1.0, 0).unwrap_err().contains("epsilon"));
        assert!(check(30, f32::NAN, 0).unwrap_err().contains("epsilon"));
        assert!(check(30, 1e-5, 1)
            .unwrap_err()
            .contains("output_norm.weight has type 1"));
    }

    #[test]
    fn headers_that_do_not_parse_are_left_to_llama_cpp() {
        let path = gguf(0, 1e-5, 0);
        let full = std::fs::read(&path).unwrap();
        // Cut inside the architecture value: the metadata does not parse, so nothing is judged.
        std::fs::write(&path, &full[..60]).unwrap();
        let result = check_gguf_metadata(&path);
        let _ = std::fs::remove_file(path);
        assert!(result.is_ok());
    }
}
