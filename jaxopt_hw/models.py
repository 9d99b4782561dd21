"""Small flax ``nnx`` models for sweeps: an MLP and a CNN.

:class:`MLP` is a multi-layer perceptron (Linear layers with tanh between them; the data-parallel
study trains it too). :class:`CNN` is a small convolutional network for 8×8 images. Its
convolutions are :class:`Conv`: the same arithmetic as ``nnx.Conv`` with 'SAME' padding and stride
1 (a test checks them against each other), written as shifted slices and one matrix product. The
reason is speed inside a sweep: ``vmap`` over a grid of models turns ``nnx.Conv``'s convolution
into a grouped convolution, which XLA:CPU runs several times slower than the batched matrix
products this form becomes.

Example::

    from flax import nnx
    from jaxopt_hw import models

    mlp = models.MLP((64, 128, 10), rngs=nnx.Rngs(0))
    cnn = models.CNN(channels=(8, 16), classes=10, rngs=nnx.Rngs(0))
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
from flax import nnx

__all__ = ["CNN", "MLP", "Conv"]


class MLP(nnx.Module):
  """A small multi-layer perceptron: Linear layers with tanh between them."""

  def __init__(self, sizes: Sequence[int], *, rngs: nnx.Rngs, dtype=jnp.float32):
    self.layers = nnx.List(
      [
        nnx.Linear(a, b, rngs=rngs, dtype=dtype, param_dtype=dtype)
        for a, b in zip(sizes[:-1], sizes[1:])
      ]
    )

  def __call__(self, x):
    for layer in self.layers[:-1]:
      x = jnp.tanh(layer(x))
    return self.layers[-1](x)


class Conv(nnx.Module):
  """A 2-D convolution, 'SAME' padding, stride 1, on NHWC inputs: ``nnx.Conv``'s arithmetic.

  The kernel has ``nnx.Conv``'s layout (kh, kw, in, out) and initialiser (LeCun normal); the bias
  starts at zero. Each output pixel is the matrix product of its (kh·kw·in) neighbourhood, gathered
  by shifted slices of the zero-padded input, with the flattened kernel.
  """

  def __init__(
    self,
    in_features: int,
    out_features: int,
    kernel_size: tuple[int, int] = (3, 3),
    *,
    rngs: nnx.Rngs,
    dtype=jnp.float32,
  ):
    kh, kw = kernel_size
    self.kernel_size = (kh, kw)
    init = nnx.initializers.lecun_normal()
    self.kernel = nnx.Param(init(rngs.params(), (kh, kw, in_features, out_features), dtype))
    self.bias = nnx.Param(jnp.zeros((out_features,), dtype))

  def __call__(self, x):
    kh, kw = self.kernel_size
    h, w = x.shape[-3], x.shape[-2]
    # 'SAME' padding as XLA computes it: (k - 1) // 2 before, the rest after
    top, left = (kh - 1) // 2, (kw - 1) // 2
    pad = [(0, 0)] * (x.ndim - 3) + [(top, kh - 1 - top), (left, kw - 1 - left), (0, 0)]
    xp = jnp.pad(x, pad)
    patches = jnp.concatenate(
      [xp[..., i : i + h, j : j + w, :] for i in range(kh) for j in range(kw)], axis=-1
    )  # channels ordered (i, j, in): the kernel's (kh, kw, in) flattened
    kernel = self.kernel[...]
    return patches @ kernel.reshape(-1, kernel.shape[-1]) + self.bias[...]


def _avg_pool_2x2(x):
  *lead, h, w, c = x.shape
  return x.reshape(*lead, h // 2, 2, w // 2, 2, c).mean(axis=(-4, -2))


class CNN(nnx.Module):
  """Two 3×3 convolutions (ReLU, 2×2 average pooling after each) and a linear classifier.

  For 8×8×1 inputs with ``channels=(c1, c2)``: 8×8×c1 → 4×4×c1 → 4×4×c2 → 2×2×c2 → ``classes``
  logits.
  """

  def __init__(
    self,
    channels: Sequence[int] = (8, 16),
    classes: int = 10,
    image_size: int = 8,
    in_channels: int = 1,
    *,
    rngs: nnx.Rngs,
    dtype=jnp.float32,
  ):
    c1, c2 = channels
    self.conv1 = Conv(in_channels, c1, rngs=rngs, dtype=dtype)
    self.conv2 = Conv(c1, c2, rngs=rngs, dtype=dtype)
    side = image_size // 4
    self.out = nnx.Linear(side * side * c2, classes, rngs=rngs, dtype=dtype, param_dtype=dtype)

  def __call__(self, x):
    x = _avg_pool_2x2(nnx.relu(self.conv1(x)))
    x = _avg_pool_2x2(nnx.relu(self.conv2(x)))
    return self.out(x.reshape(*x.shape[:-3], -1))
