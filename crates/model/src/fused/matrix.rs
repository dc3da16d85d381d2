//! Strided f32 matrix views and their product on the `gemm` crate (the
//! kernels candle's own matmul uses), for fused ops that multiply inside
//! one op: per attention head, or a dense layer with its bias.

use candle_core::Result;
use gemm::Parallelism;

/// `rows × cols` values of a slice, element `(r, c)` at
/// `r · row_stride + c · col_stride`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> View<'a> {
    /// A row-major block: `rows` rows of `cols` values, `row_stride` apart.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// A dense row-major matrix.
    pub fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::rows(data, rows, cols, cols)
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Whether every element lies inside the slice.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
                < self.data.len()
    }
}

/// Whether a product runs on one thread or on rayon's pool.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Threads {
    One,
    All,
}

/// `out = a · b`, or `out += a · b` with `accumulate`; `out` is `a.rows`
/// rows of `b.cols` values, `out_row_stride` apart.
pub(crate) fn product(
    out: &mut [f32],
    out_row_stride: usize,
    a: View,
    b: View,
    accumulate: bool,
    threads: Threads,
) -> Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k {
        candle_core::bail!("matrix product: {m}x{k} times {}x{n}", b.rows);
    }
    let out_view = View::rows(out, m, n, out_row_stride);
    if !(a.in_bounds() && b.in_bounds() && out_view.in_bounds()) {
        candle_core::bail!("matrix product: a view reaches past its slice");
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let parallelism = match threads {
        Threads::All if rayon::current_num_threads() > 1 => {
            Parallelism::Rayon(rayon::current_num_threads())
        }
        _ => Parallelism::None,
    };
    // SAFETY: the three views were checked to lie inside their slices, `out`
    // is borrowed mutably and so overlaps neither input, and f32 is one of
    // gemm's types. gemm computes dst := alpha·dst + beta·lhs·rhs, reading
    // dst only when asked to.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            out_row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: View, b: View) -> Vec<f32> {
        let at = |v: &View, r: usize, c: usize| v.data[r * v.row_stride + c * v.col_stride];
        let mut out = vec![0f32; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                out[i * b.cols + j] = (0..a.cols).map(|p| at(&a, i, p) * at(&b, p, j)).sum();
            }
        }
        out
    }

    #[test]
    fn strided_and_transposed_products_match_the_definition() {
        let values: Vec<f32> = (0..120).map(|i| ((i * 37) % 23) as f32 - 11.0).collect();
        // A 4x3 block of a 10-wide matrix, and the transpose of a 5x3 one.
        let a = View::rows(&values[2..], 4, 3, 10);
        let b = View::dense(&values[50..65], 5, 3).t();
        let expected = naive(a, b);
        for threads in [Threads::One, Threads::All] {
            let mut out = vec![0f32; 4 * 5];
            product(&mut out, 5, a, b, false, threads).unwrap();
            assert_eq!(out, expected);
            product(&mut out, 5, a, b, true, threads).unwrap();
            let doubled: Vec<f32> = expected.iter().map(|v| 2.0 * v).collect();
            assert_eq!(out, doubled);
        }
    }

    #[test]
    fn mismatched_or_out_of_bounds_views_are_errors() {
        let values = vec![1f32; 12];
        let mut out = vec![0f32; 16];
        let a = View::dense(&values, 4, 3);
        let error = product(&mut out, 4, a, a, false, Threads::One).unwrap_err();
        assert!(error.to_string().contains("4x3 times 4x3"), "{error}");
        let too_long = View::rows(&values, 4, 3, 4);
        let error = product(&mut out, 4, too_long, a.t(), false, Threads::One).unwrap_err();
        assert!(error.to_string().contains("past its slice"), "{error}");
    }
}
