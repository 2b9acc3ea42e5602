//! llama.cpp's RPC backend: devices of other machines for a model (the client side, `--rpc`) and
//! the worker that offers this machine's devices to such clients (`rpc-server`).
//!
//! The steering ops are ordinary ggml ops and the span mask an ordinary graph input, so a steered
//! graph runs on remote devices as it is: nothing here knows about steering.
//!
//! ggml-rpc.h is not part of the generated bindings (those come from llama.h alone and are
//! hash-checked), so the few functions used are declared here by hand; they must match
//! `ggml/include/ggml-rpc.h` of the vendored llama.cpp with `patches/0003-*` (timeouts) and
//! `patches/0004-*` (reported memory) applied.
//!
//! Failure model: once an endpoint is handed to ggml-rpc, a failed connection, handshake or
//! command ends in GGML_ABORT (ggml has no error path there). Before that, [`RpcServers::connect`]
//! checks every endpoint with a bounded TCP connect, so the common mistakes (nothing listening, a
//! wrong host) are ordinary errors; after it, [`super::exit_on_abort`] turns the abort into a
//! message and exit status 1, and [`describe_failure`] says what became of the server.

use super::error::LlamaError;
use super::sys;
use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

// Declarations of ggml/include/ggml-rpc.h (patched), see the module comment.
extern "C" {
    fn ggml_backend_rpc_add_server(endpoint: *const c_char) -> sys::ggml_backend_reg_t;
    fn ggml_backend_rpc_set_timeout(seconds: u32);
    fn ggml_backend_rpc_start_server_mem(
        endpoint: *const c_char,
        cache_dir: *const c_char,
        n_threads: usize,
        n_devices: usize,
        devices: *mut sys::ggml_backend_dev_t,
        mem: *const usize,
    );
}

/// The longest the reachability check of one endpoint waits for a TCP connection.
pub const CONNECT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// An RPC server address, `HOST:PORT`. ggml-rpc splits it at the first `:` and connects over
/// IPv4, so IPv6 literals are refused here rather than misread there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    pub fn new(host: &str, port: u16) -> Result<Self, String> {
        format!("{host}:{port}").parse()
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The IPv4 address ggml-rpc will connect to (it takes the first address the name resolves to).
    fn resolve(&self) -> Result<SocketAddrV4, String> {
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?;
        addrs
            .filter_map(|a| match a {
                SocketAddr::V4(v4) => Some(v4),
                SocketAddr::V6(_) => None,
            })
            .next()
            .ok_or_else(|| {
                format!(
                    "{} has no IPv4 address (llama.cpp's RPC client connects over IPv4 only)",
                    self.host
                )
            })
    }

    /// Open (and close again) a TCP connection within `timeout`: whether something listens there.
    pub fn check_reachable(&self, timeout: Duration) -> Result<(), String> {
        let addr = self.resolve()?;
        match TcpStream::connect_timeout(&SocketAddr::V4(addr), timeout) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                Err(format!("no TCP connection within {} s", timeout.as_secs_f32()))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (host, port) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not HOST:PORT (e.g. 192.168.1.10:50052)"))?;
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '[' || c == ']') {
            return Err(format!("`{s}` has no valid host before the `:`"));
        }
        if port.contains(':') {
            return Err(format!(
                "`{s}`: IPv6 addresses are not supported by llama.cpp's RPC backend, use an IPv4 address or a host name"
            ));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("`{s}`: the port must be a number from 1 to 65535"))?;
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Endpoints handed to ggml-rpc in this process, and the I/O timeout they got: what
/// [`describe_failure`] needs to say which server an abort is about.
static CONNECTED: Mutex<(Vec<Endpoint>, u32)> = Mutex::new((Vec::new(), 0));

/// One device of an RPC server (or a local one), as llama.cpp names and sizes it.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub name: String,
    pub description: String,
    pub free_bytes: usize,
    pub total_bytes: usize,
}

/// A ggml device handle. Devices of a backend registry live as long as the process: ggml never
/// frees them.
#[derive(Debug, Clone, Copy)]
struct Device(sys::ggml_backend_dev_t);

impl Device {
    fn info(self) -> DeviceInfo {
        let text = |p: *const c_char| {
            if p.is_null() {
                String::new()
            } else {
                // SAFETY: ggml returns NUL-terminated strings owned by the device, which lives
                // for the whole process; we copy them.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: a valid device handle (see `Device`); the out-pointers are valid for writes.
        // For an RPC device this asks the server (a connected one, see RpcServers::connect).
        let (name, description) = unsafe {
            sys::ggml_backend_dev_memory(self.0, &mut free, &mut total);
            (
                sys::ggml_backend_dev_name(self.0),
                sys::ggml_backend_dev_description(self.0),
            )
        };
        DeviceInfo {
            name: text(name),
            description: text(description),
            free_bytes: free,
            total_bytes: total,
        }
    }

    fn kind(self) -> sys::ggml_backend_dev_type {
        // SAFETY: a valid device handle.
        unsafe { sys::ggml_backend_dev_type(self.0) }
    }
}

/// Devices registered in this process (compiled-in backends: the CPU, GPUs in GPU builds).
fn local_devices() -> Vec<Device> {
    // SAFETY: the registry's device list is fixed after backend initialisation; indices below
    // ggml_backend_dev_count are valid.
    let n = unsafe { sys::ggml_backend_dev_count() };
    (0..n)
        // SAFETY: i < ggml_backend_dev_count().
        .map(|i| Device(unsafe { sys::ggml_backend_dev_get(i) }))
        .filter(|d| !d.0.is_null())
        .collect()
}

/// The GPUs of this machine as llama.cpp would use them by default: discrete GPUs, or the
/// integrated ones when there is none (the same rule as llama.cpp's device selection; llama.cpp
/// also drops a GPU seen twice by two backends, which a build with one GPU backend cannot have).
fn local_gpus() -> Vec<Device> {
    let devices = local_devices();
    let gpus: Vec<Device> = devices
        .iter()
        .copied()
        .filter(|d| d.kind() == sys::GGML_BACKEND_DEVICE_TYPE_GPU)
        .collect();
    if !gpus.is_empty() {
        return gpus;
    }
    devices
        .into_iter()
        .filter(|d| d.kind() == sys::GGML_BACKEND_DEVICE_TYPE_IGPU)
        .collect()
}

/// Connected RPC servers and their devices, for [`super::Placement`].
#[derive(Debug, Clone)]
pub struct RpcServers {
    endpoints: Vec<Endpoint>,
    /// Per endpoint, in order, the server's devices.
    devices: Vec<(Endpoint, Device)>,
}

impl RpcServers {
    /// Check that something listens at every endpoint (a TCP connect bounded by
    /// [`CONNECT_CHECK_TIMEOUT`]), then connect to each through ggml-rpc, whose sends and
    /// receives are bounded by `timeout` from then on, and list the servers' devices.
    ///
    /// A server that accepts the connection but fails the handshake (another program on the
    /// port, another protocol version, a worker busy with another client until `timeout`)
    /// makes ggml abort the process: see the module comment.
    pub fn connect(endpoints: &[Endpoint], timeout: Duration) -> Result<RpcServers, LlamaError> {
        for (i, e) in endpoints.iter().enumerate() {
            if endpoints[..i].contains(e) {
                return Err(LlamaError::RpcListedTwice(e.to_string()));
            }
        }
        let check_timeout = timeout.min(CONNECT_CHECK_TIMEOUT);
        for e in endpoints {
            e.check_reachable(check_timeout)
                .map_err(|detail| LlamaError::RpcUnreachable {
                    endpoint: e.to_string(),
                    detail,
                })?;
        }
        // whole seconds, at least one: 0 would mean "wait forever" to ggml-rpc
        let seconds = timeout.as_secs_f64().ceil().clamp(1.0, u32::MAX as f64) as u32;
        // SAFETY: sets a process-wide atomic read when ggml-rpc opens a connection.
        unsafe { ggml_backend_rpc_set_timeout(seconds) };
        let mut devices = Vec::new();
        for e in endpoints {
            let c_endpoint = CString::new(e.to_string())
                .map_err(|_| LlamaError::InvalidText("RPC endpoint contains a NUL byte".into()))?;
            {
                let mut connected = CONNECTED.lock().unwrap_or_else(|p| p.into_inner());
                if !connected.0.contains(e) {
                    connected.0.push(e.clone());
                }
                connected.1 = seconds;
            }
            // SAFETY: c_endpoint is NUL-terminated and outlives the call (ggml copies it). The
            // call connects and performs the handshake; ggml keeps the registry for the process.
            let reg = unsafe { ggml_backend_rpc_add_server(c_endpoint.as_ptr()) };
            if reg.is_null() {
                return Err(LlamaError::RpcNoDevices(e.to_string()));
            }
            // SAFETY: reg is a valid registry returned above.
            let n = unsafe { sys::ggml_backend_reg_dev_count(reg) };
            if n == 0 {
                return Err(LlamaError::RpcNoDevices(e.to_string()));
            }
            for i in 0..n {
                // SAFETY: i < the registry's device count.
                let dev = unsafe { sys::ggml_backend_reg_dev_get(reg, i) };
                if !dev.is_null() {
                    devices.push((e.clone(), Device(dev)));
                }
            }
        }
        Ok(RpcServers {
            endpoints: endpoints.to_vec(),
            devices,
        })
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Every device of every server, in `--rpc` order, with its server.
    pub fn devices(&self) -> Vec<(Endpoint, DeviceInfo)> {
        self.devices.iter().map(|(e, d)| (e.clone(), d.info())).collect()
    }

    /// The devices a model is offloaded to, NULL-terminated for `llama_model_params.devices`:
    /// the RPC devices first, then this machine's GPUs, the order llama.cpp's default device
    /// selection uses with `--rpc` (the CPU is not in the list: llama.cpp keeps the input layer
    /// and every layer that is not offloaded on it).
    pub(crate) fn offload_devices(&self) -> Vec<sys::ggml_backend_dev_t> {
        self.devices
            .iter()
            .map(|(_, d)| d.0)
            .chain(local_gpus().into_iter().map(|d| d.0))
            .chain(std::iter::once(std::ptr::null_mut()))
            .collect()
    }
}

/// What became of an RPC server after a failure, see [`describe_failure`].
#[derive(Debug, Clone)]
pub struct ServerState {
    pub endpoint: Endpoint,
    /// It still accepts TCP connections (alive but silent), rather than being gone.
    pub listening: bool,
    /// One sentence on what that means.
    pub description: String,
}

/// What became of the RPC server a ggml abort message names, if it names one this process
/// connected to: a fresh TCP connect tells a server that is gone from one that is alive but
/// silent. None when the message is not about a connected server.
pub fn describe_failure(message: &str) -> Option<ServerState> {
    let (endpoints, seconds) = {
        let connected = CONNECTED.lock().unwrap_or_else(|p| p.into_inner());
        (connected.0.clone(), connected.1)
    };
    let endpoint = endpoints
        .into_iter()
        .find(|e| names_endpoint(message, &e.to_string()))?;
    // A worker that is being killed can release its connection to us before its listening
    // socket (the kernel frees a dying process's sockets in no fixed order), so a connect at once
    // may still succeed: look only after a moment, and call it alive only if it answers twice.
    let probe = || {
        std::thread::sleep(Duration::from_millis(250));
        endpoint.check_reachable(Duration::from_secs(1))
    };
    Some(match probe().and_then(|()| probe()) {
        Err(detail) => ServerState {
            description: format!(
                "{endpoint} no longer accepts connections ({detail}): the worker exited or crashed, or its host or the network is down"
            ),
            endpoint,
            listening: false,
        },
        Ok(()) => ServerState {
            description: format!(
                "{endpoint} still accepts connections, but did not answer within {seconds} s or answered \
                 outside llama.cpp's RPC protocol: it is hung, busy with a longer computation or with \
                 another client (a worker serves one client at a time), or not an RPC server of this \
                 llama.cpp version"
            ),
            endpoint,
            listening: true,
        },
    })
}

/// Whether `message` contains `endpoint` as a whole (not `host:5005` inside `host:50052`).
fn names_endpoint(message: &str, endpoint: &str) -> bool {
    message.match_indices(endpoint).any(|(i, _)| {
        let after = message[i + endpoint.len()..].chars().next();
        !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// The devices an RPC worker offers: every GPU of this machine, or its CPU when it has none (the
/// rule of llama.cpp's rpc-server; partial accelerators such as BLAS are not whole devices).
pub fn worker_devices() -> Vec<DeviceInfo> {
    worker_device_handles().into_iter().map(Device::info).collect()
}

fn worker_device_handles() -> Vec<Device> {
    let devices = local_devices();
    let gpus: Vec<Device> = devices
        .iter()
        .copied()
        .filter(|d| {
            matches!(
                d.kind(),
                sys::GGML_BACKEND_DEVICE_TYPE_GPU | sys::GGML_BACKEND_DEVICE_TYPE_IGPU
            )
        })
        .collect();
    if !gpus.is_empty() {
        return gpus;
    }
    devices
        .into_iter()
        .filter(|d| d.kind() == sys::GGML_BACKEND_DEVICE_TYPE_CPU)
        .take(1)
        .collect()
}

/// How an RPC worker serves.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// IPv4 address to listen on.
    pub host: Ipv4Addr,
    pub port: u16,
    /// Threads of the CPU device.
    pub threads: usize,
    /// Memory (bytes) each device reports to clients, in [`worker_devices`] order; missing or
    /// 0 entries report the device's own numbers.
    pub memory: Vec<usize>,
}

/// Serve this machine's devices ([`worker_devices`]) to RPC clients, one client at a time, until
/// the process ends: llama.cpp's server loop never returns once it listens, so this returns only
/// with the reason it could not start.
pub fn serve_forever(options: &WorkerOptions) -> LlamaError {
    let endpoint = format!("{}:{}", options.host, options.port);
    let devices = worker_device_handles();
    if devices.is_empty() {
        return LlamaError::RpcServe {
            endpoint,
            detail: "this machine has no device to offer".into(),
        };
    }
    if options.memory.len() > devices.len() {
        return LlamaError::RpcServe {
            endpoint,
            detail: format!(
                "{} memory sizes for {} device{}",
                options.memory.len(),
                devices.len(),
                if devices.len() == 1 { "" } else { "s" }
            ),
        };
    }
    // ggml-rpc binds with SO_REUSEADDR and reports a failed bind only as "Failed to create server
    // socket" on stderr: binding here first gives the reason (address in use, not local).
    if let Err(e) = TcpListener::bind(SocketAddrV4::new(options.host, options.port)) {
        return LlamaError::RpcServe {
            endpoint,
            detail: e.to_string(),
        };
    }
    let mut memory = options.memory.clone();
    memory.resize(devices.len(), 0);
    let mut handles: Vec<sys::ggml_backend_dev_t> = devices.iter().map(|d| d.0).collect();
    let c_endpoint = CString::new(endpoint.clone()).expect("an IPv4 address and a port contain no NUL");
    // SAFETY: c_endpoint is NUL-terminated; `handles` holds handles.len() valid device handles
    // and `memory` as many sizes; all three outlive the call, which serves until the process
    // ends or returns when the server cannot start. A NULL cache directory disables the cache.
    unsafe {
        ggml_backend_rpc_start_server_mem(
            c_endpoint.as_ptr(),
            std::ptr::null(),
            options.threads.max(1),
            handles.len(),
            handles.as_mut_ptr(),
            memory.as_ptr(),
        );
    }
    LlamaError::RpcServe {
        endpoint,
        detail: "llama.cpp's RPC server stopped (see its message above)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_as_ggml_rpc_reads_them() {
        let e: Endpoint = "192.168.1.10:50052".parse().unwrap();
        assert_eq!((e.host(), e.port()), ("192.168.1.10", 50052));
        assert_eq!(e.to_string(), "192.168.1.10:50052");
        assert_eq!(" worker-2:1 ".parse::<Endpoint>().unwrap().to_string(), "worker-2:1");
        for (bad, says) in [
            ("localhost", "HOST:PORT"),
            (":50052", "host"),
            ("host:0", "1 to 65535"),
            ("host:65536", "1 to 65535"),
            ("host:port", "1 to 65535"),
            ("::1:50052", "host"),
            ("fe80::1:50052", "IPv6"),
            ("[::1]:50052", "host"),
        ] {
            let err = bad.parse::<Endpoint>().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn failure_messages_name_endpoints_whole() {
        assert!(names_endpoint("RPC server 127.0.0.1:5005 closed", "127.0.0.1:5005"));
        assert!(names_endpoint(
            "handshake failed for 127.0.0.1:5005\n",
            "127.0.0.1:5005"
        ));
        assert!(!names_endpoint("RPC server 127.0.0.1:50052 closed", "127.0.0.1:5005"));
        assert!(names_endpoint("127.0.0.1:5005", "127.0.0.1:5005"));
    }

    #[test]
    fn an_unreachable_endpoint_is_an_error_in_bounded_time() {
        // a port that was free a moment ago: nothing listens there
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = Endpoint::new("127.0.0.1", port).unwrap();
        let start = std::time::Instant::now();
        let err = RpcServers::connect(std::slice::from_ref(&e), Duration::from_secs(2)).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
        let text = err.to_string();
        assert!(text.contains(&e.to_string()) && text.contains("refused"), "{text}");
        let twice = RpcServers::connect(&[e.clone(), e], Duration::from_secs(1)).unwrap_err();
        assert!(twice.to_string().contains("twice"), "{twice}");
    }
}
