//! Mutated model files (issue #18, "Never crash"): corrupt one field of a real GGUF file at a time
//! and load the result through the library in a child process with a time limit. Every case must
//! end in a clear error or a successful load (plus one decoded token), never a signal, a panic or
//! a hang.
//!
//! The harness parses the GGUF v3 header itself (magic, version u32, n_tensors u64, n_kv u64, KV
//! pairs, tensor infos, alignment, data) to target fields precisely: header fields, KV key and
//! string lengths, value types, array element types and counts, numeric metadata values (block
//! count, head counts, token ids, ...), tensor name lengths, n_dims, dims, types and offsets,
//! truncations at every structural boundary and in the data, and random byte flips in the
//! header. One copy of the model lives in a temp file; each case patches it in place, runs the
//! child, and restores the original bytes, so N cases never need N copies on disk.
//!
//! ```sh
//! cargo run --release --example mutate_models -- [--model FILE] [--cases 2000] [--first K --count M]
//!     [--timeout 30] [--log FILE]        # one JSON line per case appended to FILE
//! cargo run --release --example mutate_models -- --summary FILE   # table by class, from a log
//! ```
//! scripts/mutate-models.sh runs all cases in slices (each under the compute lock) and
//! summarises. The child is this example itself (`--load FILE`), which exits 0 after a load and
//! one decoded token, 3 with a clear error on stderr.

use spotlight::llama::{init_backend, Batch, Context, ContextParams, FlashAttn, Model, ModelParams};
use spotlight::models::default_model_path;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Exit status of the child for a clear (reported) error.
const CLEAR_ERROR: i32 = 3;
/// Address-space limit of the child, so that a mutated size that makes llama.cpp allocate
/// terabytes fails there (bad_alloc, reported) instead of taking the machine down.
const CHILD_VMEM_KB: u64 = 8 * 1024 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--load") {
        let path = args.get(i + 1).unwrap_or_else(|| usage("--load needs a file"));
        std::process::exit(load_child(Path::new(path)));
    }
    if let Some(i) = args.iter().position(|a| a == "--summary") {
        let path = args.get(i + 1).unwrap_or_else(|| usage("--summary needs a log file"));
        std::process::exit(summary(Path::new(path)));
    }
    let mut model = default_model_path();
    let (mut cases, mut first, mut count, mut timeout) = (2000usize, 0usize, usize::MAX, 30u64);
    let mut log: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        let num = |v: String| {
            v.parse::<usize>()
                .unwrap_or_else(|_| usage(&format!("{a} takes a number")))
        };
        match a.as_str() {
            "--model" => model = PathBuf::from(value()),
            "--cases" => cases = num(value()),
            "--first" => first = num(value()),
            "--count" => count = num(value()),
            "--timeout" => timeout = num(value()) as u64,
            "--log" => log = Some(PathBuf::from(value())),
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    std::process::exit(run_cases(
        &model,
        cases,
        first,
        count,
        Duration::from_secs(timeout),
        log.as_deref(),
    ));
}

fn usage(msg: &str) -> ! {
    eprintln!("{msg}\nusage: mutate_models [--model F] [--cases N] [--first K] [--count M] [--timeout S] [--log F] | --summary F | --load F");
    std::process::exit(2)
}

// ---------------------------------------------------------------------------------------------
// child: load through the library, decode one token

fn load_child(path: &Path) -> i32 {
    init_backend(false);
    let params = ModelParams {
        n_gpu_layers: 0,
        progress: false,
    };
    let model = match Model::load(path, &params) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return CLEAR_ERROR;
        }
    };
    let ctx_params = ContextParams {
        n_ctx: 64,
        n_batch: 16,
        n_ubatch: 16,
        n_threads: 1,
        n_seq_max: 1,
        flash_attn: FlashAttn::Off,
    };
    let mut ctx = match Context::new(&model, ctx_params) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return CLEAR_ERROR;
        }
    };
    let tokens = match model.vocab().tokenize("Hello", true, false) {
        Ok(t) if !t.is_empty() => t,
        Ok(_) => {
            eprintln!("error: the vocabulary tokenizes \"Hello\" to nothing");
            return CLEAR_ERROR;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return CLEAR_ERROR;
        }
    };
    let mut batch = Batch::new(tokens.len(), 1);
    for (i, &t) in tokens.iter().enumerate() {
        batch.add(t, i as i32, &[0], i + 1 == tokens.len());
    }
    if let Err(e) = ctx.decode(&batch) {
        eprintln!("error: {e}");
        return CLEAR_ERROR;
    }
    let logits = ctx.logits(tokens.len() as i32 - 1);
    let best = (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap_or(0);
    println!(
        "loaded: {} ({} layers), next token {best}",
        model.description(),
        model.n_layer()
    );
    0
}

// ---------------------------------------------------------------------------------------------
// GGUF layout

/// Where the fields of a GGUF file are (byte offsets).
struct Layout {
    len: u64,
    n_tensors: u64,
    kvs: Vec<Kv>,
    tensors: Vec<TensorInfo>,
    /// End of the tensor infos, before alignment padding.
    infos_end: u64,
    data_start: u64,
}

struct Kv {
    key: String,
    key_len_at: u64,
    type_at: u64,
    value_type: u32,
    /// Scalar value (offset, size) or, for strings, the length field.
    value_at: u64,
    value_size: u64,
    /// Arrays: element type and count fields, and the first element's string length (string arrays).
    array: Option<(u64, u64, u32, u64, Option<u64>)>,
}

struct TensorInfo {
    name: String,
    name_len_at: u64,
    n_dims_at: u64,
    dims_at: Vec<u64>,
    dims: Vec<u64>,
    type_at: u64,
    offset_at: u64,
    offset: u64,
}

fn scalar_size(t: u32) -> Option<u64> {
    Some(match t {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u32(&mut self) -> u32 {
        let v = u32::from_le_bytes(self.b[self.at..self.at + 4].try_into().unwrap());
        self.at += 4;
        v
    }
    fn u64(&mut self) -> u64 {
        let v = u64::from_le_bytes(self.b[self.at..self.at + 8].try_into().unwrap());
        self.at += 8;
        v
    }
    fn string(&mut self) -> String {
        let n = self.u64() as usize;
        let s = String::from_utf8_lossy(&self.b[self.at..self.at + n]).into_owned();
        self.at += n;
        s
    }
    fn skip_value(&mut self, t: u32) {
        match t {
            8 => {
                let n = self.u64() as usize;
                self.at += n;
            }
            9 => {
                let (et, n) = (self.u32(), self.u64());
                for _ in 0..n {
                    self.skip_value(et);
                }
            }
            t => self.at += scalar_size(t).expect("valid GGUF value type") as usize,
        }
    }
}

/// Parse the (valid) original file.
fn parse_layout(b: &[u8]) -> Layout {
    assert_eq!(&b[..4], b"GGUF", "not a GGUF file");
    let mut r = Reader { b, at: 4 };
    assert_eq!(r.u32(), 3, "the harness reads GGUF v3");
    let n_tensors = r.u64();
    let n_kv = r.u64();
    let mut kvs = Vec::new();
    let mut alignment = 32u64;
    for _ in 0..n_kv {
        let key_len_at = r.at as u64;
        let key = r.string();
        let type_at = r.at as u64;
        let value_type = r.u32();
        let value_at = r.at as u64;
        let mut array = None;
        if value_type == 9 {
            let et_at = r.at as u64;
            let et = r.u32();
            let count_at = r.at as u64;
            let count = r.u64();
            let first_len = (et == 8 && count > 0).then_some(r.at as u64);
            for _ in 0..count {
                r.skip_value(et);
            }
            array = Some((et_at, count_at, et, count, first_len));
        } else {
            r.skip_value(value_type);
        }
        if key == "general.alignment" {
            alignment = u32::from_le_bytes(b[value_at as usize..value_at as usize + 4].try_into().unwrap()) as u64;
        }
        kvs.push(Kv {
            key,
            key_len_at,
            type_at,
            value_type,
            value_at,
            value_size: r.at as u64 - value_at,
            array,
        });
    }
    let mut tensors = Vec::new();
    for _ in 0..n_tensors {
        let name_len_at = r.at as u64;
        let name = r.string();
        let n_dims_at = r.at as u64;
        let n_dims = r.u32();
        let mut dims_at = Vec::new();
        let mut dims = Vec::new();
        for _ in 0..n_dims {
            dims_at.push(r.at as u64);
            dims.push(r.u64());
        }
        let type_at = r.at as u64;
        r.u32();
        let offset_at = r.at as u64;
        let offset = r.u64();
        tensors.push(TensorInfo {
            name,
            name_len_at,
            n_dims_at,
            dims_at,
            dims,
            type_at,
            offset_at,
            offset,
        });
    }
    let infos_end = r.at as u64;
    Layout {
        len: b.len() as u64,
        n_tensors,
        kvs,
        tensors,
        infos_end,
        data_start: infos_end.div_ceil(alignment) * alignment,
    }
}

// ---------------------------------------------------------------------------------------------
// cases

#[derive(Clone)]
enum Edit {
    /// Overwrite bytes at an offset.
    Write(u64, Vec<u8>),
    /// Cut the file at this length.
    Truncate(u64),
}

#[derive(Clone)]
struct Case {
    class: &'static str,
    what: String,
    edit: Edit,
}

/// splitmix64: deterministic, dependency-free randomness for the random part of the cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

fn u32_values(orig: u32, rng: &mut Rng) -> Vec<(String, u32)> {
    let mut v = vec![
        ("0".to_string(), 0),
        ("1".into(), 1),
        ("orig+1".into(), orig.wrapping_add(1)),
        ("orig-1".into(), orig.wrapping_sub(1)),
        ("0x7fffffff".into(), 0x7fff_ffff),
        ("0xffffffff".into(), u32::MAX),
    ];
    let r = rng.next() as u32;
    v.push((format!("random {r:#x}"), r));
    v
}

fn u64_values(orig: u64, rng: &mut Rng) -> Vec<(String, u64)> {
    let mut v = vec![
        ("0".to_string(), 0),
        ("orig+1".into(), orig.wrapping_add(1)),
        ("orig-1".into(), orig.wrapping_sub(1)),
        ("2^32".into(), 1 << 32),
        ("2^62".into(), 1 << 62),
        ("u64::MAX".into(), u64::MAX),
        ("orig*256".into(), orig.wrapping_mul(256)),
    ];
    let r = rng.next();
    v.push((format!("random {r:#x}"), r));
    v
}

fn w32(at: u64, v: u32) -> Edit {
    Edit::Write(at, v.to_le_bytes().to_vec())
}

fn w64(at: u64, v: u64) -> Edit {
    Edit::Write(at, v.to_le_bytes().to_vec())
}

/// Every targeted case first (deterministic), then random ones of every class up to `n`.
fn make_cases(l: &Layout, original: &[u8], n: usize) -> Vec<Case> {
    let mut rng = Rng(0x5EED_0018);
    let mut cases = Vec::new();
    let add =
        |cases: &mut Vec<Case>, class: &'static str, what: String, edit: Edit| cases.push(Case { class, what, edit });

    for m in [b"GGUG".to_vec(), b"\0\0\0\0".to_vec(), b"FUGG".to_vec()] {
        add(
            &mut cases,
            "header.magic",
            format!("magic {:?}", String::from_utf8_lossy(&m)),
            Edit::Write(0, m),
        );
    }
    for (what, v) in [("0", 0), ("1", 1), ("2", 2), ("4", 4), ("0xffffffff", u32::MAX)] {
        add(&mut cases, "header.version", format!("version {what}"), w32(4, v));
    }
    for (what, v) in u64_values(l.n_tensors, &mut rng) {
        add(&mut cases, "header.n_tensors", format!("n_tensors {what}"), w64(8, v));
    }
    for (what, v) in u64_values(l.kvs.len() as u64, &mut rng) {
        add(&mut cases, "header.n_kv", format!("n_kv {what}"), w64(16, v));
    }

    let read_u32 = |at: u64| u32::from_le_bytes(original[at as usize..at as usize + 4].try_into().unwrap());
    let read_u64 = |at: u64| u64::from_le_bytes(original[at as usize..at as usize + 8].try_into().unwrap());
    for kv in &l.kvs {
        let k = &kv.key;
        for (what, v) in u64_values(k.len() as u64, &mut rng).into_iter().step_by(2) {
            add(
                &mut cases,
                "kv.key_length",
                format!("{k}: key length {what}"),
                w64(kv.key_len_at, v),
            );
        }
        for t in [13u32, 0xffff_ffff, 8, 9, (kv.value_type + 1) % 13]
            .into_iter()
            .filter(|&t| t != kv.value_type)
        {
            add(
                &mut cases,
                "kv.value_type",
                format!("{k}: type {} -> {t}", kv.value_type),
                w32(kv.type_at, t),
            );
        }
        match kv.value_type {
            8 => {
                for (what, v) in u64_values(read_u64(kv.value_at), &mut rng) {
                    add(
                        &mut cases,
                        "kv.string_length",
                        format!("{k}: string length {what}"),
                        w64(kv.value_at, v),
                    );
                }
            }
            9 => {
                let (et_at, count_at, et, count, first_len) = kv.array.unwrap();
                for t in [13u32, 9, 8, 0, 4, 0xffff_ffff] {
                    if t != et {
                        add(
                            &mut cases,
                            "kv.array_type",
                            format!("{k}: element type {et} -> {t}"),
                            w32(et_at, t),
                        );
                    }
                }
                for (what, v) in u64_values(count, &mut rng) {
                    add(
                        &mut cases,
                        "kv.array_count",
                        format!("{k}: count {what}"),
                        w64(count_at, v),
                    );
                }
                if let Some(at) = first_len {
                    for (what, v) in u64_values(read_u64(at), &mut rng).into_iter().step_by(2) {
                        add(
                            &mut cases,
                            "kv.array_string_length",
                            format!("{k}[0]: length {what}"),
                            w64(at, v),
                        );
                    }
                }
                if et == 5 || et == 4 {
                    // e.g. token types or merges ids: corrupt the first and a middle element.
                    for idx in [0, count / 2] {
                        let at = kv.value_at + 12 + 4 * idx;
                        for v in [u32::MAX, 0x7fff_ffff, 1000] {
                            add(&mut cases, "kv.array_value", format!("{k}[{idx}] = {v:#x}"), w32(at, v));
                        }
                    }
                }
            }
            4 | 5 => {
                for (what, v) in u32_values(read_u32(kv.value_at), &mut rng) {
                    add(
                        &mut cases,
                        "kv.numeric_value",
                        format!("{k} = {what}"),
                        w32(kv.value_at, v),
                    );
                }
            }
            6 => {
                for v in [0.0f32, -1.0, f32::NAN, f32::INFINITY, 1e30] {
                    add(
                        &mut cases,
                        "kv.numeric_value",
                        format!("{k} = {v}"),
                        Edit::Write(kv.value_at, v.to_le_bytes().to_vec()),
                    );
                }
            }
            10 | 11 => {
                for (what, v) in u64_values(read_u64(kv.value_at), &mut rng) {
                    add(
                        &mut cases,
                        "kv.numeric_value",
                        format!("{k} = {what}"),
                        w64(kv.value_at, v),
                    );
                }
            }
            7 => add(
                &mut cases,
                "kv.numeric_value",
                format!("{k} = 2 (bool)"),
                Edit::Write(kv.value_at, vec![2]),
            ),
            _ => {}
        }
    }

    // Tensor infos: the first three, a middle one and the last get every mutation; the random
    // part below reaches the others.
    let nt = l.tensors.len();
    let picked: Vec<usize> = [0, 1, 2, nt / 2, nt - 1].into_iter().filter(|&i| i < nt).collect();
    for &ti in &picked {
        tensor_cases(l, ti, &mut rng, &mut cases, true);
    }

    // Truncations at every structural boundary (and just around it), and in the data.
    let mut cuts: Vec<(String, u64)> = vec![
        ("empty".into(), 0),
        ("magic only".into(), 4),
        ("mid magic".into(), 2),
        ("before n_tensors".into(), 8),
        ("before n_kv".into(), 16),
        ("header only".into(), 24),
        ("end of tensor infos".into(), l.infos_end),
        (
            "mid tensor infos".into(),
            (l.kvs.last().map_or(24, |k| k.value_at + k.value_size) + l.infos_end) / 2,
        ),
        ("start of data".into(), l.data_start),
        ("one byte short".into(), l.len - 1),
        ("half the data".into(), l.data_start + (l.len - l.data_start) / 2),
    ];
    for (i, kv) in l.kvs.iter().enumerate().step_by(3) {
        cuts.push((format!("inside kv {i} ({}) key", kv.key), kv.key_len_at + 9));
        cuts.push((
            format!("inside kv {i} ({}) value", kv.key),
            kv.value_at + kv.value_size / 2,
        ));
    }
    for ti in picked {
        let t = &l.tensors[ti];
        cuts.push((format!("tensor {} info", t.name), t.n_dims_at + 2));
        cuts.push((format!("inside tensor {} data", t.name), l.data_start + t.offset + 1));
    }
    for (what, at) in cuts {
        add(
            &mut cases,
            "truncate",
            format!("truncate: {what} ({at} bytes)"),
            Edit::Truncate(at),
        );
    }

    // Random cases of every class until `n`.
    let classes = ["flip", "truncate", "tensor", "kv", "kv", "tensor"];
    while cases.len() < n {
        match *rng.pick(&classes) {
            "flip" => {
                let at = rng.below(l.infos_end);
                let bit = 1u8 << rng.below(8);
                add(
                    &mut cases,
                    "flip",
                    format!("flip bit {bit:#x} at byte {at}"),
                    Edit::Write(at, vec![original[at as usize] ^ bit]),
                );
            }
            "truncate" => {
                let at = if rng.below(2) == 0 {
                    rng.below(l.data_start)
                } else {
                    rng.below(l.len)
                };
                add(
                    &mut cases,
                    "truncate",
                    format!("truncate: random ({at} bytes)"),
                    Edit::Truncate(at),
                );
            }
            "tensor" => {
                let ti = rng.below(nt as u64) as usize;
                let mut all = Vec::new();
                tensor_cases(l, ti, &mut rng, &mut all, false);
                let c = rng.pick(&all).clone();
                cases.push(c);
            }
            _ => {
                let kv = rng.pick(&l.kvs);
                let (class, what, edit) = match rng.below(3) {
                    0 => (
                        "kv.key_length",
                        "key length",
                        w64(kv.key_len_at, rng.next() >> rng.below(64)),
                    ),
                    1 => ("kv.value_type", "type", w32(kv.type_at, rng.below(16) as u32)),
                    _ => {
                        let len = kv.value_size.clamp(1, 8);
                        let bytes = rng.next().to_le_bytes()[..len as usize].to_vec();
                        ("kv.value_bytes", "value bytes", Edit::Write(kv.value_at, bytes))
                    }
                };
                add(&mut cases, class, format!("{}: random {what}", kv.key), edit);
            }
        }
    }
    cases.truncate(n);
    cases
}

fn tensor_cases(l: &Layout, ti: usize, rng: &mut Rng, cases: &mut Vec<Case>, all: bool) {
    let t = &l.tensors[ti];
    let name = &t.name;
    let mut add = |class: &'static str, what: String, edit: Edit| cases.push(Case { class, what, edit });
    for (what, v) in u64_values(t.name.len() as u64, rng)
        .into_iter()
        .step_by(if all { 1 } else { 2 })
    {
        add(
            "tensor.name_length",
            format!("{name}: name length {what}"),
            w64(t.name_len_at, v),
        );
    }
    for v in [0u32, 3, 4, 5, 64, u32::MAX] {
        if v as usize != t.dims.len() {
            add(
                "tensor.n_dims",
                format!("{name}: n_dims {} -> {v}", t.dims.len()),
                w32(t.n_dims_at, v),
            );
        }
    }
    for (d, &at) in t.dims_at.iter().enumerate() {
        for (what, v) in u64_values(t.dims[d], rng) {
            add("tensor.dim", format!("{name}: dim {d} {what}"), w64(at, v));
        }
    }
    // Types: invalid ids, removed ones (4, 5: Q4_2/Q4_3), and valid ones of other sizes.
    for v in [0u32, 1, 2, 4, 5, 8, 12, 30, 39, 40, 41, 255, u32::MAX] {
        add("tensor.type", format!("{name}: type -> {v}"), w32(t.type_at, v));
    }
    let other = l.tensors[(ti + 1) % l.tensors.len()].offset;
    for (what, v) in [
        ("+1 (unaligned)".to_string(), t.offset + 1),
        ("+32".into(), t.offset + 32),
        ("0".into(), 0),
        ("of the next tensor".into(), other),
        ("past the end".into(), l.len - l.data_start),
        ("u64::MAX".into(), u64::MAX),
        ("u64::MAX-31".into(), u64::MAX - 31),
        ("2^40".into(), 1 << 40),
    ] {
        add("tensor.offset", format!("{name}: offset {what}"), w64(t.offset_at, v));
    }
}

// ---------------------------------------------------------------------------------------------
// running

fn run_cases(model: &Path, n: usize, first: usize, count: usize, timeout: Duration, log: Option<&Path>) -> i32 {
    let original = std::fs::read(model).unwrap_or_else(|e| {
        eprintln!("cannot read {}: {e}", model.display());
        std::process::exit(2)
    });
    let layout = parse_layout(&original);
    let cases = make_cases(&layout, &original, n);
    let end = first.saturating_add(count).min(cases.len());
    let exe = std::env::current_exe().expect("own path");
    let tmp = std::env::temp_dir().join(format!("spotlight-mutated-{}.gguf", std::process::id()));
    std::fs::write(&tmp, &original).expect("write the working copy");
    let mut log_file = log.map(|p| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .expect("open the log")
    });
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    let started = Instant::now();
    println!(
        "{} cases ({} KV pairs, {} tensors, data at {}); running {first}..{end}",
        cases.len(),
        layout.kvs.len(),
        layout.tensors.len(),
        layout.data_start
    );
    for (i, case) in cases.iter().enumerate().take(end).skip(first) {
        let file = OpenOptions::new()
            .write(true)
            .open(&tmp)
            .expect("open the working copy");
        apply(&file, &case.edit);
        let t0 = Instant::now();
        let (outcome, detail) = run_child(&exe, &tmp, timeout);
        let ms = t0.elapsed().as_millis();
        restore(&file, &case.edit, &original);
        drop(file);
        *tally.entry(outcome).or_default() += 1;
        if outcome != "loaded" && outcome != "clear_error" {
            println!("case {i} [{}] {}: {outcome}: {detail}", case.class, case.what);
        }
        if let Some(f) = log_file.as_mut() {
            let line = serde_json::json!({
                "case": i, "class": case.class, "what": case.what, "outcome": outcome, "ms": ms, "detail": detail,
            });
            writeln!(f, "{line}").expect("write the log");
        }
    }
    let _ = std::fs::remove_file(&tmp);
    let secs = started.elapsed().as_secs_f64();
    let ran = end.saturating_sub(first);
    println!(
        "ran {ran} cases in {secs:.0} s ({:.0} ms/case): {tally:?}",
        secs * 1000.0 / ran.max(1) as f64
    );
    let bad = tally
        .iter()
        .filter(|(k, _)| !matches!(**k, "loaded" | "clear_error"))
        .map(|(_, v)| v)
        .sum::<usize>();
    i32::from(bad > 0)
}

fn apply(file: &File, edit: &Edit) {
    match edit {
        Edit::Write(at, bytes) => file.write_all_at(bytes, *at).expect("patch the working copy"),
        Edit::Truncate(len) => file.set_len(*len).expect("truncate the working copy"),
    }
}

fn restore(file: &File, edit: &Edit, original: &[u8]) {
    match edit {
        Edit::Write(at, bytes) => {
            let (a, b) = (*at as usize, *at as usize + bytes.len());
            file.write_all_at(&original[a..b.min(original.len())], *at)
                .expect("restore the working copy");
        }
        Edit::Truncate(len) => {
            file.write_all_at(&original[*len as usize..], *len)
                .expect("restore the working copy");
        }
    }
}

/// Run the loader on `file`: (outcome, detail). Outcomes: loaded, clear_error, signal, panic,
/// other_exit, hang.
fn run_child(exe: &Path, file: &Path, timeout: Duration) -> (&'static str, String) {
    // `ulimit -v` through the shell keeps this harness free of unsafe pre_exec code.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {CHILD_VMEM_KB}; exec \"$0\" --load \"$1\""))
        .arg(exe)
        .arg(file)
        // ggml would run gdb for a backtrace on every abort: seconds per crashing case.
        .env("GGML_NO_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the loader");
    // Drain both pipes while waiting: a child that logs more than a pipe holds would otherwise
    // block on its write and look like a hang.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the loader") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    // The line that says why: an assertion, an exception, an error; else the last lines.
    let tail = |s: &str| {
        let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
        let keys = ["GGML_ASSERT", "error", "terminate", "what()", "panicked", "Sanitizer"];
        let why: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| keys.iter().any(|k| l.contains(k)))
            .collect();
        let picked = if why.is_empty() {
            &lines[lines.len().saturating_sub(2)..]
        } else {
            &why[..why.len().min(3)]
        };
        picked.join(" | ").chars().take(400).collect::<String>()
    };
    let Some(status) = status else {
        return ("hang", format!("no exit after {} s", timeout.as_secs()));
    };
    match (status.code(), status.signal()) {
        (Some(0), _) => ("loaded", stdout.trim().to_string()),
        (Some(CLEAR_ERROR), _) => ("clear_error", tail(&stderr)),
        (Some(101), _) => ("panic", tail(&stderr)),
        (Some(c), _) => ("other_exit", format!("exit {c}: {}", tail(&stderr))),
        (None, Some(sig)) => ("signal", format!("signal {sig}: {}", tail(&stderr))),
        (None, None) => ("other_exit", "no status".into()),
    }
}

/// Table by class from a log written with --log: class, tried, and each outcome.
fn summary(path: &Path) -> i32 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        eprintln!("cannot read {}: {e}", path.display());
        std::process::exit(2)
    });
    let outcomes = ["loaded", "clear_error", "signal", "panic", "other_exit", "hang"];
    let mut table: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut cases = std::collections::BTreeSet::new();
    let mut ms = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a log line is JSON");
        cases.insert(v["case"].as_u64().unwrap());
        let row = table.entry(v["class"].as_str().unwrap().to_string()).or_default();
        *row.entry(v["outcome"].as_str().unwrap().to_string()).or_default() += 1;
        ms.push(v["ms"].as_u64().unwrap());
    }
    println!("| class | tried | {} |", outcomes.join(" | "));
    println!("|---|---:|{}", "---:|".repeat(outcomes.len()));
    let mut bad = 0;
    for (class, row) in &table {
        let tried: usize = row.values().sum();
        let cells: Vec<String> = outcomes
            .iter()
            .map(|o| row.get(*o).copied().unwrap_or(0).to_string())
            .collect();
        bad += row
            .iter()
            .filter(|(o, _)| !matches!(o.as_str(), "loaded" | "clear_error"))
            .map(|(_, n)| n)
            .sum::<usize>();
        println!("| {class} | {tried} | {} |", cells.join(" | "));
    }
    ms.sort_unstable();
    let total: u64 = ms.iter().sum();
    println!(
        "\n{} log lines, {} distinct cases; child time {:.0} s in all, median {} ms, max {} ms; {bad} crash/hang/panic",
        ms.len(),
        cases.len(),
        total as f64 / 1000.0,
        ms.get(ms.len() / 2).copied().unwrap_or(0),
        ms.last().copied().unwrap_or(0)
    );
    i32::from(bad > 0)
}
