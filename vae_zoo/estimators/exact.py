"""Exact log p(x) of models with 2- or 3-D latent spaces: the integral of p(x|z) p(z) over z by
the midpoint rule, on one grid decoded once for every image (`quadrature`) or, for posteriors too
narrow for a shared grid, on a grid over each image's own box (`posterior_boxes`,
`quadrature_in_boxes`). The reference App. D and AIS are validated against.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from vae_zoo.core.validation import check_positive_int

QUADRATURE_HALF_WIDTH = 5.0  # the grid covers the prior to 5 standard deviations per axis
BOX_DROP = 40.0  # nats: a box holds every cell of the wide grid within this of the image's highest


def quadrature(model, x, half_width: float = QUADRATURE_HALF_WIDTH, points: int = 801, batch_size: int = 1000,
               grid_chunk: int = 16_384, verbose: bool = False) -> np.ndarray:
    """log p(x) = log of the integral of p(x|z) p(z) over z, by the midpoint rule on a grid of
    `points` per axis over [-half_width, half_width]^Z: exact up to the grid's error and the prior
    mass outside the box (5 standard deviations: under 6e-7 per axis), for latent spaces of 2 or
    3 dimensions. The grid is decoded once and serves every image: log p(x|z) of a Bernoulli or
    Gaussian decoder is linear in x and x^2, so each chunk of the grid is one matrix product with a
    batch of images.

    Returns:
        float64 array of shape (n,), nats.

    Raises:
        InvalidArgumentError: a latent space of more than 3 dimensions (use `app_d` or `ais`), or
            another decoder than Bernoulli or Gaussian.
    """
    import scipy.special

    grid, cell = _grid(model, [(-half_width, half_width)] * model.latent_dim, points)
    x = np.asarray(x, np.float32)
    total = np.full(len(x), -np.inf)
    for start, first, log_joint in _log_joints(model, x, grid, batch_size, grid_chunk):
        rows = slice(first, first + len(log_joint))
        total[rows] = np.logaddexp(total[rows], scipy.special.logsumexp(log_joint, axis=1))
        if verbose and first + batch_size >= len(x):
            print(f"quadrature: {min(start + grid_chunk, len(grid)):,} of {len(grid):,} grid points", flush=True)
    return total + np.log(cell)


def posterior_boxes(model, x, half_width: float = QUADRATURE_HALF_WIDTH, points: int = 801,
                    drop: float = BOX_DROP, batch_size: int = 1000, grid_chunk: int = 16_384) -> np.ndarray:
    """Per image, the box (low, high per latent axis) holding every cell of a wide grid whose
    log p(x, z) is within `drop` nats of the image's highest, widened by one cell: where its
    posterior lives, for `quadrature_in_boxes`. An image whose box reaches the wide grid's edge
    (a posterior far out in the prior's tail) is searched again on a grid twice as wide, up to
    8 x `half_width`.

    Returns:
        float64 array of shape (n, latent_dim, 2).

    Raises:
        EstimateError: a posterior that reaches beyond 8 x `half_width`.
    """
    from vae_zoo.core.errors import EstimateError

    x = np.asarray(x, np.float32)
    boxes = np.empty((len(x), model.latent_dim, 2))
    pending = np.arange(len(x))
    for width in half_width * np.array([1, 2, 4, 8]):
        found, step = _boxes(model, x[pending], width, points, drop, batch_size, grid_chunk)
        boxes[pending] = found
        pending = pending[np.any((found[..., 0] < -width + step) | (found[..., 1] > width - step), axis=1)]
        if not len(pending):
            return boxes
    raise EstimateError(f"The posteriors of {len(pending)} images reach beyond {8 * half_width:g} prior standard "
                        "deviations: quadrature cannot hold them. Use App. D or AIS.")


def _boxes(model, x, half_width, points, drop, batch_size, grid_chunk) -> tuple[np.ndarray, float]:
    grid, _ = _grid(model, [(-half_width, half_width)] * model.latent_dim, points)
    best = np.full(len(x), -np.inf)
    for _, first, log_joint in _log_joints(model, x, grid, batch_size, grid_chunk):
        best[first:first + len(log_joint)] = np.maximum(best[first:first + len(log_joint)], log_joint.max(axis=1))
    low, high = np.full((len(x), model.latent_dim), np.inf), np.full((len(x), model.latent_dim), -np.inf)
    for start, first, log_joint in _log_joints(model, x, grid, batch_size, grid_chunk):
        z = grid[start:start + log_joint.shape[1]]
        for row, keep in enumerate(log_joint >= best[first:first + len(log_joint), None] - drop):
            low[first + row] = np.minimum(low[first + row], z[keep].min(axis=0, initial=np.inf))
            high[first + row] = np.maximum(high[first + row], z[keep].max(axis=0, initial=-np.inf))
    step = 2 * half_width / (points - 1)
    return np.stack([low - step, high + step], axis=-1), step


def quadrature_in_boxes(model, x, boxes: np.ndarray, points: int = 201, grid_chunk: int = 16_384,
                        verbose: bool = False) -> np.ndarray:
    """log p(x) by the midpoint rule on a grid of `points` per axis over each image's own box
    (`posterior_boxes`): for posteriors too narrow for one shared grid (a Gaussian decoder that
    learned small variances). Each image's grid is decoded for it alone.

    Returns:
        float64 array of shape (n,), nats.
    """
    import scipy.special

    x = np.asarray(x, np.float32)
    out = np.empty(len(x))
    for i, box in enumerate(boxes):
        grid, cell = _grid(model, box, points)
        total = -np.inf
        for _, _, log_joint in _log_joints(model, x[i:i + 1], grid, 1, grid_chunk):
            total = np.logaddexp(total, scipy.special.logsumexp(log_joint))
        out[i] = total + np.log(cell)
        if verbose and (i + 1) % 100 == 0:
            print(f"quadrature: {i + 1:,} of {len(x):,} images, each on its own box", flush=True)
    return out


def _grid(model, ranges, points: int) -> tuple[np.ndarray, float]:
    """A regular grid of `points` per axis over the given (low, high) ranges, and its cell volume."""
    from vae_zoo.core.errors import InvalidArgumentError

    if model.latent_dim > 3:
        raise InvalidArgumentError(f"Quadrature integrates latent spaces of 2 or 3 dimensions; this model's has "
                                   f"{model.latent_dim}: use app_d or ais.")
    if model.likelihood not in ("bernoulli", "gaussian"):
        raise InvalidArgumentError(f"Quadrature knows Bernoulli and Gaussian decoders. Received: {model.likelihood}")
    points = check_positive_int("points", points)
    axes = [np.linspace(low, high, points) for low, high in ranges]
    grid = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)
    return grid, float(np.prod([a[1] - a[0] for a in axes]))


def _log_joints(model, x: np.ndarray, grid: np.ndarray, batch_size: int, grid_chunk: int):
    """Yields (grid start, first image, float64 log p(x, z) of shape (images, grid points)) over
    chunks of `grid` and batches of `x`: each chunk decoded once, one matrix product per batch
    (log p(x|z) of a Bernoulli or Gaussian decoder is linear in x and x^2)."""
    log_prior = -0.5 * np.sum(grid**2, axis=1) - 0.5 * model.latent_dim * np.log(2 * np.pi)
    for start in range(0, len(grid), grid_chunk):
        params = model.decoder.params(tf.constant(grid[start:start + grid_chunk], tf.float32))
        if model.likelihood == "bernoulli":  # x . logits - sum softplus(logits)
            weights, offset = [params["logits"]], -tf.reduce_sum(tf.math.softplus(params["logits"]), axis=1)
        else:  # -x^2 . 1/(2 var) + x . mean/var - sum(mean^2/(2 var) + log var / 2 + log(2 pi) / 2),
            # in float64: with small variances the three terms are large and cancel
            params = {k: tf.cast(params[k], tf.float64) for k in ("x_mean", "x_log_var")}
            inv = tf.exp(-params["x_log_var"])
            weights = [-0.5 * inv, params["x_mean"] * inv]
            offset = -tf.reduce_sum(0.5 * params["x_mean"] ** 2 * inv + 0.5 * params["x_log_var"]
                                    + 0.5 * np.log(2 * np.pi), axis=1)
        for first in range(0, len(x), batch_size):
            xb = tf.constant(x[first:first + batch_size], weights[0].dtype)
            features = [xb] if len(weights) == 1 else [xb * xb, xb]
            log_joint = tf.add_n([tf.matmul(f, w, transpose_b=True) for f, w in zip(features, weights)]) + offset
            yield start, first, log_joint.numpy().astype(np.float64) + log_prior[start:start + grid_chunk]
