//! A safe view of ggml graph construction for the attention-steering hook of the patch.
//!
//! llama.cpp calls the hook while it builds a compute graph, once per attention layer; the hook
//! emits ggml ops through [`GraphBuilder`] and returns the tensor to use as attention
//! probabilities. Tensors are only valid during that call (`'g`). After each ubatch is computed,
//! [`ComputedGraph`] lets the hook read the outputs it asked for.

mod flash;

pub(crate) use flash::build_fa_trampoline;
pub use flash::{ElemType, FlashAttnOperands};

use super::sys;
use super::{Pos, SeqId};
use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// A tensor of the graph being built; valid during one build callback.
#[derive(Clone, Copy)]
pub struct Tensor<'g> {
    ptr: NonNull<sys::ggml_tensor>,
    _graph: PhantomData<&'g ()>,
}

impl<'g> Tensor<'g> {
    fn from_raw(ptr: *mut sys::ggml_tensor) -> Self {
        Self {
            ptr: NonNull::new(ptr).expect("ggml returned a null tensor"),
            _graph: PhantomData,
        }
    }

    fn raw(self) -> *mut sys::ggml_tensor {
        self.ptr.as_ptr()
    }

    /// Shape [ne0, ne1, ne2, ne3] (ne0 varies fastest).
    pub fn shape(self) -> [i64; 4] {
        // SAFETY: the tensor lives in the graph context for the duration of 'g.
        unsafe { (*self.ptr.as_ptr()).ne }
    }
}

/// Emits ggml ops into the graph under construction. Shapes are checked before each op so that a
/// mistake is a Rust panic (caught at the hook boundary) rather than a ggml abort.
pub struct GraphBuilder<'g> {
    ctx: *mut sys::ggml_context,
    gf: *mut sys::ggml_cgraph,
    _graph: PhantomData<&'g ()>,
}

impl<'g> GraphBuilder<'g> {
    fn check_broadcast(a: Tensor<'g>, b: Tensor<'g>, op: &str) {
        // SAFETY: both tensors are valid during 'g; ggml_can_repeat only reads shapes.
        let ok = unsafe { sys::ggml_can_repeat(b.raw(), a.raw()) };
        assert!(ok, "{op}: cannot broadcast {:?} over {:?}", b.shape(), a.shape());
    }

    /// a * b, b broadcast over a.
    pub fn mul(&mut self, a: Tensor<'g>, b: Tensor<'g>) -> Tensor<'g> {
        Self::check_broadcast(a, b, "mul");
        // SAFETY: valid context and tensors; shapes checked.
        Tensor::from_raw(unsafe { sys::ggml_mul(self.ctx, a.raw(), b.raw()) })
    }

    /// a *= b in place (reuses a's memory), b broadcast over a.
    pub fn mul_inplace(&mut self, a: Tensor<'g>, b: Tensor<'g>) -> Tensor<'g> {
        Self::check_broadcast(a, b, "mul_inplace");
        // SAFETY: valid context and tensors; shapes checked.
        Tensor::from_raw(unsafe { sys::ggml_mul_inplace(self.ctx, a.raw(), b.raw()) })
    }

    /// a + b, b broadcast over a.
    pub fn add(&mut self, a: Tensor<'g>, b: Tensor<'g>) -> Tensor<'g> {
        Self::check_broadcast(a, b, "add");
        // SAFETY: valid context and tensors; shapes checked.
        Tensor::from_raw(unsafe { sys::ggml_add(self.ctx, a.raw(), b.raw()) })
    }

    /// a += b in place, b broadcast over a.
    pub fn add_inplace(&mut self, a: Tensor<'g>, b: Tensor<'g>) -> Tensor<'g> {
        Self::check_broadcast(a, b, "add_inplace");
        // SAFETY: valid context and tensors; shapes checked.
        Tensor::from_raw(unsafe { sys::ggml_add_inplace(self.ctx, a.raw(), b.raw()) })
    }

    /// a − b, b broadcast over a.
    pub fn sub(&mut self, a: Tensor<'g>, b: Tensor<'g>) -> Tensor<'g> {
        Self::check_broadcast(a, b, "sub");
        // SAFETY: valid context and tensors; shapes checked.
        Tensor::from_raw(unsafe { sys::ggml_sub(self.ctx, a.raw(), b.raw()) })
    }

    /// a / b, b broadcast over a.
    pub fn div(&mut self, a: Tensor<'g>, b: Tensor<'g>) -> Tensor<'g> {
        Self::check_broadcast(a, b, "div");
        // SAFETY: valid context and tensors; shapes checked.
        Tensor::from_raw(unsafe { sys::ggml_div(self.ctx, a.raw(), b.raw()) })
    }

    /// Sum along dimension 0: [n0, n1, n2, n3] → [1, n1, n2, n3].
    pub fn sum_rows(&mut self, a: Tensor<'g>) -> Tensor<'g> {
        // SAFETY: valid context and tensor.
        Tensor::from_raw(unsafe { sys::ggml_sum_rows(self.ctx, a.raw()) })
    }

    /// 1 where a > 0, else 0.
    pub fn step(&mut self, a: Tensor<'g>) -> Tensor<'g> {
        // SAFETY: valid context and tensor.
        Tensor::from_raw(unsafe { sys::ggml_step(self.ctx, a.raw()) })
    }

    pub fn clamp(&mut self, a: Tensor<'g>, min: f32, max: f32) -> Tensor<'g> {
        // SAFETY: valid context and tensor.
        Tensor::from_raw(unsafe { sys::ggml_clamp(self.ctx, a.raw(), min, max) })
    }

    /// a * s + b, elementwise.
    pub fn scale_bias(&mut self, a: Tensor<'g>, s: f32, b: f32) -> Tensor<'g> {
        // SAFETY: valid context and tensor.
        Tensor::from_raw(unsafe { sys::ggml_scale_bias(self.ctx, a.raw(), s, b) })
    }

    /// Reorder dimensions: dimension i of `a` becomes dimension `axes[i]` of the result.
    pub fn permute(&mut self, a: Tensor<'g>, axes: [i32; 4]) -> Tensor<'g> {
        let mut seen = [false; 4];
        for &ax in &axes {
            assert!(
                (0..4).contains(&ax) && !seen[ax as usize],
                "permute: invalid axes {axes:?}"
            );
            seen[ax as usize] = true;
        }
        // SAFETY: valid context and tensor; axes form a permutation (checked).
        Tensor::from_raw(unsafe { sys::ggml_permute(self.ctx, a.raw(), axes[0], axes[1], axes[2], axes[3]) })
    }

    /// Make a contiguous copy (needed after permute before row-wise ops).
    pub fn cont(&mut self, a: Tensor<'g>) -> Tensor<'g> {
        // SAFETY: valid context and tensor.
        Tensor::from_raw(unsafe { sys::ggml_cont(self.ctx, a.raw()) })
    }

    /// Name a tensor so that it can be found after the computation.
    pub fn set_name(&mut self, t: Tensor<'g>, name: &str) {
        let c = CString::new(name).expect("tensor names have no NUL");
        // SAFETY: valid tensor; ggml copies the name (truncating to its buffer).
        unsafe { sys::ggml_set_name(t.raw(), c.as_ptr()) };
    }

    /// Columns [first, first + n) of dimension 0 of `a`: a strided view sharing `a`'s memory
    /// (writes through an in-place op on it land in `a`).
    pub fn view_columns(&mut self, a: Tensor<'g>, first: i64, n: i64) -> Tensor<'g> {
        let ne = a.shape();
        assert!(
            first >= 0 && n > 0 && first + n <= ne[0],
            "view_columns: columns [{first}, {}) outside [0, {})",
            first + n,
            ne[0]
        );
        // SAFETY: valid context and tensor; the view stays inside `a` (checked) and uses its
        // strides, so every element addressed is an element of `a`.
        Tensor::from_raw(unsafe {
            let nb = (*a.raw()).nb;
            sys::ggml_view_4d(
                self.ctx,
                a.raw(),
                n,
                ne[1],
                ne[2],
                ne[3],
                nb[1],
                nb[2],
                nb[3],
                first as usize * nb[0],
            )
        })
    }

    /// Add `values` to columns [first, first + n) of dimension 0 of `a`, in place; returns `a`
    /// (whole) with the addition as a dependency, so whatever reads the result sees it.
    pub fn add_to_columns(&mut self, a: Tensor<'g>, first: i64, values: Tensor<'g>) -> Tensor<'g> {
        let (ne, nv) = (a.shape(), values.shape());
        assert!(
            first >= 0 && first + nv[0] <= ne[0] && nv[1..] == ne[1..],
            "add_to_columns: {nv:?} at column {first} does not fit {ne:?}"
        );
        // SAFETY: valid context and tensors; the region written (values' shape at `first` with
        // a's strides) lies inside `a` (checked).
        Tensor::from_raw(unsafe {
            let nb = (*a.raw()).nb;
            sys::ggml_acc_inplace(
                self.ctx,
                a.raw(),
                values.raw(),
                nb[1],
                nb[2],
                nb[3],
                first as usize * nb[0],
            )
        })
    }

    /// Keep this tensor's data after the computation and make sure it is computed.
    pub fn mark_output(&mut self, t: Tensor<'g>) {
        // SAFETY: valid tensor and graph under construction.
        unsafe {
            sys::ggml_set_output(t.raw());
            sys::ggml_build_forward_expand(self.gf, t.raw());
        }
    }
}

/// Which tokens a computed ubatch held.
pub struct UbatchInfo<'a> {
    pub pos: &'a [Pos],
    pub seq_ids: Vec<SeqId>,
}

/// The graph that was just computed.
pub struct ComputedGraph<'a> {
    gf: *mut sys::ggml_cgraph,
    _graph: PhantomData<&'a ()>,
}

impl ComputedGraph<'_> {
    /// Read an F32 output tensor by name: (data, shape). None if the graph has no such tensor.
    pub fn read_f32(&self, name: &str) -> Option<(Vec<f32>, [i64; 4])> {
        let c = CString::new(name).ok()?;
        // SAFETY: gf is the graph that was just computed and is alive during the callback.
        let t = unsafe { sys::ggml_graph_get_tensor(self.gf, c.as_ptr()) };
        if t.is_null() {
            return None;
        }
        // SAFETY: t is a tensor of the live graph; we only read its metadata here.
        let (ty, buffer, ne) = unsafe { ((*t).type_, (*t).buffer, (*t).ne) };
        if ty != sys::GGML_TYPE_F32 || buffer.is_null() {
            return None;
        }
        // SAFETY: as above.
        let n = unsafe { sys::ggml_nelements(t) } as usize;
        let mut data = vec![0f32; n];
        // SAFETY: the tensor is allocated (buffer checked), marked as output so its data is intact,
        // and `data` has room for all of its elements (contiguous F32 result of an op).
        unsafe { sys::ggml_backend_tensor_get(t, data.as_mut_ptr().cast(), 0, n * 4) };
        Some((data, ne))
    }
}

/// The span mask of a layer: which KV cells are highlighted for each query.
#[derive(Clone, Copy)]
pub struct SpanMask<'g> {
    /// F32 [n_span_kv, n_tokens, 1, n_stream]: 1 where the cell is highlighted for the query's
    /// sequence and visible to it, else 0.
    pub mask: Tensor<'g>,
    /// The mask's first column is KV cell `kv0`: it covers cells [kv0, kv0 + n_span_kv), the
    /// smallest window holding every highlighted cell; no cell outside it is highlighted.
    pub kv0: i64,
}

/// What a hook returns for a layer: the attention probabilities to multiply with V and, when
/// they are left unnormalised, their row sums (llama.cpp then divides the attention output by
/// them, which rescales whole rows at the cost of a pass over [d_v, n_tokens] instead of over
/// [n_kv, n_tokens]).
#[derive(Clone, Copy)]
pub struct SteeredAttention<'g> {
    /// [n_kv, n_tokens, n_head, n_stream]
    pub probs: Tensor<'g>,
    /// [1, n_tokens, n_head, n_stream], or None when `probs` rows sum to 1.
    pub row_sums: Option<Tensor<'g>>,
}

impl<'g> SteeredAttention<'g> {
    /// The probabilities as they are.
    pub fn unchanged(kq: Tensor<'g>) -> Self {
        Self {
            probs: kq,
            row_sums: None,
        }
    }
}

/// An attention-steering algorithm plugged into a [`super::Context`].
pub trait AttnSteer: Send {
    /// Called once per attention layer while a graph is built, with the post-softmax attention
    /// `kq` [n_kv, n_tokens, n_head, n_stream] and the span mask of the layer's KV cache (only when
    /// that cache holds highlighted cells).
    fn build<'g>(
        &mut self,
        g: &mut GraphBuilder<'g>,
        kq: Tensor<'g>,
        span: SpanMask<'g>,
        layer: usize,
    ) -> SteeredAttention<'g>;

    /// The flash-attention counterpart of [`AttnSteer::build`]: called instead of it when the
    /// context uses flash attention, after the layer's flash attention, with its operands; returns
    /// the attention output to use ([`FlashAttnOperands::out`] for no change).
    fn build_flash<'g>(
        &mut self,
        _g: &mut GraphBuilder<'g>,
        fa: FlashAttnOperands<'g>,
        _span: SpanMask<'g>,
        _layer: usize,
    ) -> Tensor<'g> {
        fa.out
    }

    /// Called after each ubatch has been computed (only if [`AttnSteer::wants_computed`]).
    fn computed(&mut self, graph: &ComputedGraph<'_>, ubatch: &UbatchInfo<'_>);

    /// Whether to call [`AttnSteer::computed`]: it costs a backend synchronisation per ubatch.
    fn wants_computed(&self) -> bool {
        true
    }
}

pub(crate) type SteerBox = Box<Box<dyn AttnSteer>>;

pub(crate) unsafe extern "C" fn build_trampoline(
    user_data: *mut c_void,
    ctx: *mut sys::ggml_context,
    gf: *mut sys::ggml_cgraph,
    kq: *mut sys::ggml_tensor,
    span_mask: *mut sys::ggml_tensor,
    span_kv0: i64,
    row_sums: *mut *mut sys::ggml_tensor,
    il: i32,
) -> *mut sys::ggml_tensor {
    // SAFETY: user_data is the `Box<dyn AttnSteer>` owned by the Context that registered this
    // hook; it outlives the registration and nothing else touches it while llama.cpp builds.
    let steer = unsafe { &mut *(user_data as *mut Box<dyn AttnSteer>) };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut g = GraphBuilder {
            ctx,
            gf,
            _graph: PhantomData,
        };
        let span = SpanMask {
            mask: Tensor::from_raw(span_mask),
            kv0: span_kv0,
        };
        steer.build(&mut g, Tensor::from_raw(kq), span, il as usize)
    }));
    // A panic must not unwind into C++: leave this layer unsteered and say so.
    let steered = result.unwrap_or_else(|_| {
        eprintln!("spotlight: steering layer {il} failed; this layer runs unsteered");
        SteeredAttention::unchanged(Tensor::from_raw(kq))
    });
    if let Some(sums) = steered.row_sums {
        // SAFETY: llama.cpp passes a valid pointer to its (null-initialised) row-sums slot.
        unsafe { *row_sums = sums.raw() };
    }
    steered.probs.raw()
}

pub(crate) unsafe extern "C" fn computed_trampoline(
    user_data: *mut c_void,
    gf: *mut sys::ggml_cgraph,
    n_tokens: i32,
    pos: *const sys::llama_pos,
    seq_id: *const *mut sys::llama_seq_id,
) {
    // SAFETY: see build_trampoline; llama.cpp calls this synchronously from llama_decode.
    let steer = unsafe { &mut *(user_data as *mut Box<dyn AttnSteer>) };
    let n = n_tokens.max(0) as usize;
    // SAFETY: llama.cpp passes arrays of n_tokens entries; each seq_id entry points to at least
    // one sequence id.
    let (pos, seq_ids) = unsafe {
        (
            std::slice::from_raw_parts(pos, n),
            (0..n).map(|i| **seq_id.add(i)).collect::<Vec<_>>(),
        )
    };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let graph = ComputedGraph {
            gf,
            _graph: PhantomData,
        };
        steer.computed(&graph, &UbatchInfo { pos, seq_ids });
    }));
}
