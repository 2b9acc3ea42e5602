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

impl Model {
    /// Load a GGUF file. The file is checked first so that common mistakes get a clear message.
    pub fn load(path: &Path, params: &ModelParams) -> Result<Model, LlamaError> {
        Self::load_placed(path, params, &Placement::default())
    }

    /// Load a GGUF file with its offloaded layers (`n_gpu_layers`) on the given devices.
    pub fn load_placed(path: &Path, params: &ModelParams, placement: &Placement) -> Result<Model, LlamaError> {
        check_gguf(path)?;
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
