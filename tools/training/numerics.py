"""Matrix product and tanh with the same bits on every machine, for reproducible training.

numpy's ``@`` calls OpenBLAS, which picks its kernel for the CPU it runs on
(Haswell, SkylakeX, Zen, Neoverse...): the kernels sum a dot product in
different orders and with or without fused multiply-add, so one seed trained
to weights that differed in the fifth digit between machines and the ONNX
file's sha256 with them. ``np.tanh`` likewise has CPU-specific vector code.
These two use only IEEE-exact elementwise operations (one multiply, one add,
one divide per element per call, never fused across calls) in a fixed order,
so the result depends on the inputs alone. They cost a few times BLAS on the
small matrices of the reach MLP, which is seconds over a whole training.
"""

from __future__ import annotations

import math

import numpy as np

_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so k * _LN2_HI is exact (fdlibm's constants)
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
# exp(r) for |r| <= ln(2)/2 by its Taylor series to r^13: relative error below 1e-16.
_EXP_TERMS = tuple(1.0 / math.factorial(n) for n in range(13, -1, -1))


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (2-D), each output summed over k = 0, 1, ... in turn, in the inputs' dtype."""
    a, b = np.asarray(a), np.asarray(b)
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    term = np.empty_like(out)
    for k in range(a.shape[1]):
        np.multiply(a[:, k : k + 1], b[k : k + 1, :], out=term)
        out += term
    return out


def _exp_nonpositive(x: np.ndarray) -> np.ndarray:
    """exp(x) for float64 x <= 0 by range reduction, a fixed polynomial and an exact power of two."""
    x = np.maximum(x, -700.0)
    k = np.rint(x * _INV_LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = np.full_like(r, _EXP_TERMS[0])
    for c in _EXP_TERMS[1:]:
        p = p * r + c
    return np.ldexp(p, k.astype(np.int32))


def tanh(x: np.ndarray) -> np.ndarray:
    """tanh in the input's dtype, computed in float64 as (1 - e) / (1 + e) with e = exp(-2|x|)."""
    x = np.asarray(x)
    wide = x.astype(np.float64)
    e = _exp_nonpositive(-2.0 * np.abs(wide))
    return np.copysign((1.0 - e) / (1.0 + e), wide).astype(x.dtype)


def elu(x: np.ndarray) -> np.ndarray:
    """ELU (alpha 1): x for x > 0, exp(x) - 1 otherwise, in the input's dtype."""
    x = np.asarray(x)
    wide = x.astype(np.float64)
    negative = _exp_nonpositive(np.minimum(wide, 0.0)) - 1.0
    return np.where(wide > 0.0, wide, negative).astype(x.dtype)
