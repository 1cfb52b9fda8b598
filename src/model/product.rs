//! The linear layers' matrix products on the CPU backend outside training, by a kernel the host
//! may bring. Natively burn's own product (the gemm crate, with AVX) runs. In the browser that
//! product is plain SIMD128 without fused multiply-add, and the products are two thirds of a
//! probe; the worker brings a kernel of its own that uses fused multiply-add where the browser
//! has relaxed SIMD. The kernel is chosen once per thread at start-up, like the backend.

use std::cell::Cell;

use burn::nn::Linear;
use burn::tensor::{DType, Device, Tensor, TensorData};

/// `c = a · b` for `a` `m × k` (row-major), `b` packed by [`pack`], `c` `m × 8·panels`
/// (row-major, overwritten), where `panels = packed.len() / (8·k)`.
pub type ProductKernel = fn(m: usize, k: usize, a: &[f32], packed: &[f32], c: &mut [f32]);

thread_local! {
    static KERNEL: Cell<Option<ProductKernel>> = const { Cell::new(None) };
}

/// Makes this thread's CPU linear layers use `kernel` (`None`: burn's product).
pub fn set_product_kernel(kernel: Option<ProductKernel>) {
    KERNEL.with(|k| k.set(kernel));
}

/// The kernel to use for a product on `device`, if any.
pub(super) fn kernel_for(device: &Device) -> Option<ProductKernel> {
    KERNEL
        .with(Cell::get)
        .filter(|_| super::on_cpu_outside_training(device))
}

/// How a `k × n` matrix is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `k` rows of `n` (a linear layer's weight as burn holds it, `[d_in, d_out]`).
    Rows,
    /// `n` rows of `k`: the transpose is wanted (the tied decoder, `[vocab, hidden]`).
    Transposed,
}

/// Columns per panel of a packed matrix.
pub const PANEL: usize = 8;

/// `b` (`k × n`, stored as `layout` says) by panels of [`PANEL`] columns: panel `p` holds its
/// columns' `k` rows one after another; columns past `n` are zero.
pub fn pack(b: &[f32], k: usize, n: usize, layout: Layout) -> Vec<f32> {
    let panels = n.div_ceil(PANEL);
    let mut packed = vec![0f32; panels * k * PANEL];
    for p in 0..panels {
        let panel = &mut packed[p * k * PANEL..(p + 1) * k * PANEL];
        let columns = (p * PANEL)..((p + 1) * PANEL).min(n);
        for (j, col) in columns.enumerate() {
            for row in 0..k {
                panel[row * PANEL + j] = match layout {
                    Layout::Rows => b[row * n + col],
                    Layout::Transposed => b[col * k + row],
                };
            }
        }
    }
    packed
}

/// The kernel's contract computed plainly, in the same order (each element summed over `k` in
/// order): the reference a kernel is checked against.
pub fn reference_kernel(m: usize, k: usize, a: &[f32], packed: &[f32], c: &mut [f32]) {
    let width = packed.len() / k.max(1);
    for i in 0..m {
        for col in 0..width {
            let (p, j) = (col / PANEL, col % PANEL);
            let mut sum = 0f32;
            for kk in 0..k {
                sum += a[i * k + kk] * packed[p * k * PANEL + kk * PANEL + j];
            }
            c[i * width + col] = sum;
        }
    }
}

/// `a · b + bias` for `a` `m × k` (row-major) and `b` `k × n` packed by [`pack`]: `m × n`,
/// row-major, the kernel's padding columns dropped.
pub(super) fn multiply(
    kernel: ProductKernel,
    a: &[f32],
    m: usize,
    k: usize,
    n: usize,
    packed: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let width = n.div_ceil(PANEL) * PANEL;
    let mut c = vec![0f32; m * width];
    if m > 0 && k > 0 {
        kernel(m, k, a, packed, &mut c);
    }
    if width != n {
        for row in 1..m {
            c.copy_within(row * width..row * width + n, row * n);
        }
        c.truncate(m * n);
    }
    if let Some(bias) = bias {
        for row in c.chunks_exact_mut(n.max(1)) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
    }
    c
}

/// `x · w + bias` over the last dimension of `x`, with `w` `k × n` stored as `layout` says.
/// Every tensor holds f32 (see [`all_f32`]).
fn product<const D: usize>(
    kernel: ProductKernel,
    x: Tensor<D>,
    w: Tensor<2>,
    layout: Layout,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    let device = x.device();
    let dims = x.dims();
    let k = dims[D - 1];
    let n = match layout {
        Layout::Rows => w.dims()[1],
        Layout::Transposed => w.dims()[0],
    };
    let m = dims[..D - 1].iter().product::<usize>();
    let f32s = |data: TensorData| data.try_into_vec::<f32>().expect("f32 values");
    // Packed on every call rather than kept: a layer's weights change while tuning, and packing
    // is k·n copies against the product's 2·m·k·n operations (m is hundreds of rows in a probe).
    let a = f32s(x.into_data());
    let packed = pack(&f32s(w.into_data()), k, n, layout);
    let bias = bias.map(|b| f32s(b.into_data()));
    let c = multiply(kernel, &a, m, k, n, &packed, bias.as_deref());
    let mut shape = dims;
    shape[D - 1] = n;
    Tensor::from_data(TensorData::new(c, shape), &device)
}

/// The kernel takes f32 only (half-precision weights keep burn's product).
fn all_f32<const D: usize>(x: &Tensor<D>, w: &Tensor<2>, bias: Option<&Tensor<1>>) -> bool {
    let f32 = |dtype: DType| dtype == DType::F32;
    f32(x.dtype()) && f32(w.dtype()) && bias.is_none_or(|b| f32(b.dtype()))
}

/// A linear layer, by the thread's kernel where there is one.
pub(super) fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    let weight = layer.weight.val();
    let bias = layer.bias.as_ref().map(|b| b.val());
    match kernel_for(&x.device()) {
        Some(kernel) if all_f32(&x, &weight, bias.as_ref()) => {
            product(kernel, x, weight, Layout::Rows, bias)
        }
        _ => layer.forward(x),
    }
}

/// `x · decoderᵀ + bias` (the vocabulary projection), by the thread's kernel where there is one.
pub(super) fn project(x: Tensor<2>, decoder: Tensor<2>, bias: Tensor<1>) -> Tensor<2> {
    match kernel_for(&x.device()) {
        Some(kernel) if all_f32(&x, &decoder, Some(&bias)) => {
            product(kernel, x, decoder, Layout::Transposed, Some(bias))
        }
        _ => x.matmul(decoder.transpose()) + bias.unsqueeze::<2>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::Distribution;

    fn max_difference<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b).abs().max().into_scalar()
    }

    /// Packing, the kernel's padded columns, the bias and the input's leading dimensions, against
    /// burn's own linear layer and product (the kernel here is the plain reference; the browser's
    /// kernels are checked against that reference when the worker starts).
    #[test]
    fn kernel_products_agree_with_burns() {
        let device = Device::flex();
        set_product_kernel(Some(reference_kernel));
        for (batch, rows, d_in, d_out) in [(2, 5, 19, 21), (1, 4, 16, 8), (3, 1, 7, 3)] {
            let layer = LinearConfig::new(d_in, d_out).init(&device);
            let x =
                Tensor::<3>::random([batch, rows, d_in], Distribution::Normal(0.0, 1.0), &device);
            let ours = linear(&layer, x.clone());
            set_product_kernel(None);
            let burns = linear(&layer, x);
            set_product_kernel(Some(reference_kernel));
            assert!(max_difference(ours, burns) < 1e-5, "linear {d_in}->{d_out}");

            let decoder =
                Tensor::<2>::random([d_out, d_in], Distribution::Normal(0.0, 1.0), &device);
            let bias = Tensor::<1>::random([d_out], Distribution::Normal(0.0, 1.0), &device);
            let h = Tensor::<2>::random([rows, d_in], Distribution::Normal(0.0, 1.0), &device);
            let ours = project(h.clone(), decoder.clone(), bias.clone());
            let burns = h.matmul(decoder.transpose()) + bias.unsqueeze::<2>();
            assert!(
                max_difference(ours, burns) < 1e-5,
                "projection {d_in}->{d_out}"
            );
        }
        set_product_kernel(None);
    }

    #[test]
    fn packing_lays_out_panels_of_eight_columns_padded_with_zeros() {
        // b = [[1, 2, 3], [4, 5, 6]] (k = 2, n = 3), and the same matrix stored transposed.
        let rows = pack(&[1., 2., 3., 4., 5., 6.], 2, 3, Layout::Rows);
        let transposed = pack(&[1., 4., 2., 5., 3., 6.], 2, 3, Layout::Transposed);
        let want = [
            1., 2., 3., 0., 0., 0., 0., 0., //
            4., 5., 6., 0., 0., 0., 0., 0.,
        ];
        assert_eq!(rows, want);
        assert_eq!(transposed, want);
    }
}
