//! Process-wide llama.cpp backend setup and log routing.

use super::sys;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once, OnceLock};

static INIT: Once = Once::new();
static VERBOSE: AtomicBool = AtomicBool::new(false);
/// Recent error lines from llama.cpp, so that a failed call can tell the user why.
static RECENT_ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// While Some, every log line is also collected here (see [`capture_logs`]).
static CAPTURE: Mutex<Option<Vec<String>>> = Mutex::new(None);
const MAX_RECENT_ERRORS: usize = 8;

unsafe extern "C" fn log_callback(level: sys::ggml_log_level, text: *const c_char, _user: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string that lives for the duration of the call.
    let msg = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    if VERBOSE.load(Ordering::Relaxed) {
        eprint!("{msg}");
    }
    if let Ok(mut capture) = CAPTURE.lock() {
        if let Some(lines) = capture.as_mut() {
            lines.push(msg.to_string());
        }
    }
    if level == sys::GGML_LOG_LEVEL_ERROR {
        if let Ok(mut errors) = RECENT_ERRORS.lock() {
            if errors.len() == MAX_RECENT_ERRORS {
                errors.remove(0);
            }
            errors.push(msg.trim().to_string());
        }
    }
}

/// Initialise llama.cpp once per process. `verbose` forwards llama.cpp's own logs to stderr;
/// otherwise they are dropped, except that errors are kept for [`last_log_errors`].
pub fn init_backend(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
    INIT.call_once(|| {
        // SAFETY: the callback is a plain function valid for the whole program; llama_backend_init
        // has no preconditions and is guarded by `Once`.
        unsafe {
            sys::llama_log_set(Some(log_callback), std::ptr::null_mut());
            sys::llama_backend_init();
        }
    });
}

/// Take the error lines llama.cpp logged since the last call.
pub fn last_log_errors() -> Vec<String> {
    RECENT_ERRORS
        .lock()
        .map(|mut e| std::mem::take(&mut *e))
        .unwrap_or_default()
}

/// llama.cpp's description of the compiled backends and CPU features.
pub fn system_info() -> String {
    // SAFETY: returns a pointer to a static, NUL-terminated buffer owned by llama.cpp.
    unsafe { CStr::from_ptr(sys::llama_print_system_info()) }
        .to_string_lossy()
        .into_owned()
}

/// Run `f` and return what llama.cpp logged meanwhile (e.g. the compute-buffer sizes it reports).
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    if let Ok(mut c) = CAPTURE.lock() {
        *c = Some(Vec::new());
    }
    let result = f();
    let lines = CAPTURE.lock().ok().and_then(|mut c| c.take()).unwrap_or_default();
    (result, lines)
}

/// What [`exit_on_abort`] calls with the location (`file:line`) and the message of an abort.
pub type AbortReport = fn(location: &str, message: &str);

static ABORT_REPORT: OnceLock<AbortReport> = OnceLock::new();

extern "C" {
    // POSIX (and the C runtime on Windows): end the process now, without exit()'s clean-up.
    fn _exit(status: std::ffi::c_int) -> !;
}

unsafe extern "C" fn abort_callback(text: *const c_char) {
    let text = if text.is_null() {
        String::new()
    } else {
        // SAFETY: ggml passes its NUL-terminated message buffer, alive during the call.
        unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
    };
    let (location, message) = split_abort_message(&text);
    if let Some(report) = ABORT_REPORT.get() {
        report(location, message.trim_end());
    }
    // SAFETY: ends the process. Not exit(): its atexit handlers and C++ static destructors could
    // wait for the threads ggml still runs (an RPC dispatcher blocked on a dead server, the CPU
    // thread pool), which is the hang this handler exists to avoid.
    unsafe { _exit(1) }
}

/// ggml's abort text is `file:line: message`: (`file:line`, `message`).
fn split_abort_message(text: &str) -> (&str, &str) {
    for (i, _) in text.match_indices(": ") {
        let prefix = &text[..i];
        let is_location = prefix.rsplit_once(':').is_some_and(|(file, line)| {
            !file.is_empty() && !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit())
        });
        if is_location {
            return (prefix, &text[i + 2..]);
        }
    }
    ("", text)
}

/// Make ggml's fatal errors (GGML_ABORT and failed GGML_ASSERTs, which print a backtrace and
/// raise SIGABRT, often with a core dump) call `report` and end the process with exit status 1.
/// For front ends whose aborts are expected conditions, such as a lost RPC server; the first
/// report installed stays.
pub fn exit_on_abort(report: AbortReport) {
    let _ = ABORT_REPORT.set(report);
    // SAFETY: the callback is a plain function valid for the whole program.
    unsafe {
        sys::ggml_set_abort_callback(Some(abort_callback));
    }
}

#[cfg(test)]
mod tests {
    use super::split_abort_message;

    #[test]
    fn abort_messages_split_into_location_and_text() {
        assert_eq!(
            split_abort_message("/x/ggml-rpc.cpp:577: RPC server h:1 closed: the connection"),
            ("/x/ggml-rpc.cpp:577", "RPC server h:1 closed: the connection")
        );
        assert_eq!(split_abort_message("no location: here"), ("", "no location: here"));
        assert_eq!(split_abort_message(""), ("", ""));
    }
}
