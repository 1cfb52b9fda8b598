//! The matrix products of the packed forward pass (`packed.rs`), by a kernel the host brings.
//! In the browser burn's product is plain SIMD128 without fused multiply-add, and the products
//! are two thirds of a probe; the worker brings a kernel of its own that uses fused multiply-add
//! where the browser has relaxed SIMD. The kernel is chosen once per thread at start-up, like
//! the backend; where none is set (natively: burn's product has AVX) burn's forward pass runs.

use std::cell::Cell;

use burn::tensor::Device;

/// `c = a · b` for `a` `m × k` (row-major), `b` packed by [`pack`], `c` `m × 8·panels`
/// (row-major, overwritten), where `panels = packed.len() / (8·k)`.
pub type ProductKernel = fn(m: usize, k: usize, a: &[f32], packed: &[f32], c: &mut [f32]);

thread_local! {
    static KERNEL: Cell<Option<ProductKernel>> = const { Cell::new(None) };
}

/// Makes this thread's inference on the CPU ([`super::MaskedLm::for_inference`]) run the packed
/// forward pass with `kernel` (`None`: burn's forward pass).
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Packing, the kernel's padded columns and the bias, in both layouts, against the plain
    /// definition of the product (the kernel here is the reference; the browser's kernels are
    /// checked against that reference when the worker starts).
    #[test]
    fn kernel_products_agree_with_the_definition() {
        let mut rng = crate::rng::SplitMix64::new(7);
        let mut random = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
                .collect()
        };
        for (m, k, n) in [(10, 19, 21), (4, 16, 8), (3, 7, 3), (1, 1, 1)] {
            let (a, b, bias) = (random(m * k), random(k * n), random(n));
            let want: Vec<f32> = (0..m * n)
                .map(|at| {
                    let (i, j) = (at / n, at % n);
                    bias[j] + (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum::<f32>()
                })
                .collect();
            let rows = pack(&b, k, n, Layout::Rows);
            let transposed_b: Vec<f32> = (0..n * k).map(|at| b[(at % k) * n + at / k]).collect();
            let transposed = pack(&transposed_b, k, n, Layout::Transposed);
            assert_eq!(rows, transposed, "{m}×{k}×{n}");
            let got = multiply(reference_kernel, &a, m, k, n, &rows, Some(&bias));
            assert_eq!(got.len(), m * n);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{m}×{k}×{n}: {g} against {w}");
            }
        }
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
