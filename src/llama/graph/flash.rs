//! The flash-attention side of the steering hook: the operands llama.cpp hands over after a
//! layer's `ggml_flash_attn_ext`, and the ggml ops a hook needs to run flash-attention passes of
//! its own (a second pass with other values, a pass over a window of cells, masks built in the
//! graph).

use super::{AttnSteer, GraphBuilder, SpanMask, Tensor};
use crate::llama::sys;
use std::ffi::c_void;
use std::marker::PhantomData;

/// Element types the hook converts between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    F32,
    F16,
}

impl ElemType {
    fn raw(self) -> sys::ggml_type {
        match self {
            ElemType::F32 => sys::GGML_TYPE_F32,
            ElemType::F16 => sys::GGML_TYPE_F16,
        }
    }
}

/// What a layer's flash attention computed with (see `llama_attn_steer_fa` in the patch).
#[derive(Clone, Copy)]
pub struct FlashAttnOperands<'g> {
    /// [d_k, n_tokens, n_head, n_stream]
    pub q: Tensor<'g>,
    /// [d_k, n_kv, n_head_kv, n_stream] (a view of the cache)
    pub k: Tensor<'g>,
    /// [d_v, n_kv, n_head_kv, n_stream] (a view of the cache)
    pub v: Tensor<'g>,
    /// F16 [n_kv, n_tokens, 1, n_stream]: 0 or a bias where visible, −∞ elsewhere.
    pub kq_mask: Tensor<'g>,
    /// Per-head attention sinks, if the model has them.
    pub sinks: Option<Tensor<'g>>,
    /// The stock result, F32 [d_v, n_head, n_tokens, n_stream].
    pub out: Tensor<'g>,
    pub kq_scale: f32,
    pub max_bias: f32,
    pub logit_softcap: f32,
}

impl<'g> FlashAttnOperands<'g> {
    /// Whether the values live in host memory (the layer runs on the CPU backend). `v` is a
    /// view made while the graph is built, which gets its buffer only when the graph is
    /// allocated: the cache tensor it views (its `view_src`) has one already.
    pub fn values_on_host(&self) -> bool {
        // SAFETY: v and the tensors it views are valid during 'g (the views were made from the
        // cache's tensors, which outlive the graph); only their metadata is read.
        unsafe {
            let mut t = self.v.raw();
            while (*t).buffer.is_null() && !(*t).view_src.is_null() {
                t = (*t).view_src;
            }
            let buffer = (*t).buffer;
            !buffer.is_null() && sys::ggml_backend_buffer_is_host(buffer)
        }
    }
}

impl Tensor<'_> {
    /// The element type, when it is one the hook converts between.
    pub fn elem_type(self) -> Option<ElemType> {
        // SAFETY: the tensor is valid during 'g; only its type is read.
        match unsafe { (*self.raw()).type_ } {
            sys::GGML_TYPE_F32 => Some(ElemType::F32),
            sys::GGML_TYPE_F16 => Some(ElemType::F16),
            _ => None,
        }
    }
}

impl<'g> GraphBuilder<'g> {
    /// Flash attention with the operands' scale, ALiBi bias and soft-cap, accumulating in F32:
    /// softmax(q·kᵀ·scale + mask) · v, [d_v, n_head, n_tokens, n_stream]. `sinks` join the
    /// softmax's denominator as in the stock pass.
    #[allow(clippy::too_many_arguments)]
    pub fn flash_attn(
        &mut self,
        fa: &FlashAttnOperands<'g>,
        k: Tensor<'g>,
        v: Tensor<'g>,
        mask: Tensor<'g>,
        sinks: Option<Tensor<'g>>,
    ) -> Tensor<'g> {
        let (q, ks, vs, ms) = (fa.q.shape(), k.shape(), v.shape(), mask.shape());
        assert!(
            ks[0] == q[0] && vs[1] == ks[1] && ms[0] == ks[1] && ms[1] == q[1] && q[2] % vs[2] == 0,
            "flash_attn: q {q:?}, k {ks:?}, v {vs:?}, mask {ms:?} do not fit"
        );
        // SAFETY: valid context and tensors; shapes checked above against what
        // ggml_flash_attn_ext asserts (mask F16 and contiguous: made so by `cast`).
        Tensor::from_raw(unsafe {
            let t = sys::ggml_flash_attn_ext(
                self.ctx,
                fa.q.raw(),
                k.raw(),
                v.raw(),
                mask.raw(),
                fa.kq_scale,
                fa.max_bias,
                fa.logit_softcap,
            );
            if let Some(s) = sinks {
                sys::ggml_flash_attn_ext_add_sinks(t, s.raw());
            }
            sys::ggml_prec_set_acc(t, sys::GGML_PREC_F32);
            t
        })
    }

    /// A contiguous copy of `a` converted to `ty` (works on strided views).
    pub fn cast(&mut self, a: Tensor<'g>, ty: ElemType) -> Tensor<'g> {
        // SAFETY: valid context and tensor; ggml_cast copies into a new contiguous tensor.
        Tensor::from_raw(unsafe { sys::ggml_cast(self.ctx, a.raw(), ty.raw()) })
    }

    /// Swap dimensions 0 and 1 (a view).
    pub fn transpose(&mut self, a: Tensor<'g>) -> Tensor<'g> {
        // SAFETY: valid context and tensor.
        Tensor::from_raw(unsafe { sys::ggml_transpose(self.ctx, a.raw()) })
    }

    /// Rows [first, first + n) of dimension 1 of `a`: a strided view sharing `a`'s memory.
    pub fn view_rows(&mut self, a: Tensor<'g>, first: i64, n: i64) -> Tensor<'g> {
        let ne = a.shape();
        assert!(
            first >= 0 && n > 0 && first + n <= ne[1],
            "view_rows: rows [{first}, {}) outside [0, {})",
            first + n,
            ne[1]
        );
        // SAFETY: valid context and tensor; the view keeps `a`'s strides and stays inside it
        // (checked), so every element addressed is an element of `a`.
        Tensor::from_raw(unsafe {
            let nb = (*a.raw()).nb;
            sys::ggml_view_4d(
                self.ctx,
                a.raw(),
                ne[0],
                n,
                ne[2],
                ne[3],
                nb[1],
                nb[2],
                nb[3],
                first as usize * nb[1],
            )
        })
    }

    /// Element 0 of dimension 0 of `a`, [1, ne1, ne2, ne3]: a strided view.
    pub fn view_first_of_rows(&mut self, a: Tensor<'g>) -> Tensor<'g> {
        let ne = a.shape();
        // SAFETY: valid context and tensor; the view addresses the first element of each row of
        // `a` with `a`'s strides.
        Tensor::from_raw(unsafe {
            let nb = (*a.raw()).nb;
            sys::ggml_view_4d(self.ctx, a.raw(), 1, ne[1], ne[2], ne[3], nb[1], nb[2], nb[3], 0)
        })
    }

    /// `a` with `before` zero rows in front of and `after` behind dimension 1.
    pub fn pad_rows(&mut self, a: Tensor<'g>, before: i64, after: i64) -> Tensor<'g> {
        assert!(
            before >= 0 && after >= 0,
            "pad_rows: negative padding {before}, {after}"
        );
        let (lp, rp) = (i32::try_from(before), i32::try_from(after));
        let (Ok(lp), Ok(rp)) = (lp, rp) else {
            panic!("pad_rows: padding {before}, {after} too large");
        };
        // SAFETY: valid context and tensor; padding amounts are non-negative and fit in i32.
        Tensor::from_raw(unsafe { sys::ggml_pad_ext(self.ctx, a.raw(), 0, 0, lp, rp, 0, 0, 0, 0) })
    }

    /// `a` repeated to the shape `ne` (each dimension a multiple of a's).
    pub fn repeat(&mut self, a: Tensor<'g>, ne: [i64; 4]) -> Tensor<'g> {
        let na = a.shape();
        assert!(
            (0..4).all(|i| na[i] > 0 && ne[i] % na[i] == 0),
            "repeat: {na:?} does not tile {ne:?}"
        );
        // SAFETY: valid context and tensor; the target shape is a multiple of a's (checked).
        Tensor::from_raw(unsafe { sys::ggml_repeat_4d(self.ctx, a.raw(), ne[0], ne[1], ne[2], ne[3]) })
    }
}

pub(crate) unsafe extern "C" fn build_fa_trampoline(
    user_data: *mut c_void,
    ctx: *mut sys::ggml_context,
    gf: *mut sys::ggml_cgraph,
    fa: *const sys::llama_attn_steer_fa,
    span_mask: *mut sys::ggml_tensor,
    span_kv0: i64,
    il: i32,
) -> *mut sys::ggml_tensor {
    // SAFETY: user_data is the `Box<dyn AttnSteer>` owned by the Context that registered this
    // hook (see build_trampoline); fa points to llama.cpp's operands, valid for this call.
    let (steer, fa) = unsafe { (&mut *(user_data as *mut Box<dyn AttnSteer>), &*fa) };
    let operands = FlashAttnOperands {
        q: Tensor::from_raw(fa.q),
        k: Tensor::from_raw(fa.k),
        v: Tensor::from_raw(fa.v),
        kq_mask: Tensor::from_raw(fa.kq_mask),
        sinks: (!fa.sinks.is_null()).then(|| Tensor::from_raw(fa.sinks)),
        out: Tensor::from_raw(fa.out),
        kq_scale: fa.kq_scale,
        max_bias: fa.max_bias,
        logit_softcap: fa.logit_softcap,
    };
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
        steer.build_flash(&mut g, operands, span, il as usize)
    }));
    // A panic must not unwind into C++: leave this layer unsteered and say so.
    result
        .unwrap_or_else(|_| {
            eprintln!("spotlight: steering layer {il} (flash attention) failed; this layer runs unsteered");
            operands.out
        })
        .raw()
}
