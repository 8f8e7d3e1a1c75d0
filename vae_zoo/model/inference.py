"""What a trained model says about images: how unusual each is (its log p(x) with a standard
error), where it sits in latent space, and the path between two of them. `VAE.score`,
`VAE.embed` and `VAE.interpolate` call these; `vae-zoo score`, `embed` and `interpolate` too."""

from __future__ import annotations

import numpy as np

from vae_zoo.core.validation import check_positive_int
from vae_zoo.estimators import marginal_likelihood


def score(model, x: np.ndarray, num_samples: int = 1000, seed: int = 0, batch_size: int = 100,
          verbose: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-image importance-weighted log p(x) (k = `num_samples`) and its Monte Carlo standard
    error: the lower, the more unusual the image is to the model (an anomaly score).

    Args:
        model: a VAE.
        x: checked data, shape (n, input_dim).

    Returns:
        (log p(x), standard error), float32 arrays of shape (n,), in nats.
    """
    return marginal_likelihood.importance_weighted(model, x, num_samples, seed, batch_size, verbose,
                                                   return_standard_error=True)


def embed(model, x: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """The posterior q(z|x) of each image: its means and variances, float32 arrays of shape
    (n, latent_dim)."""
    means, variances = [], []
    for start in range(0, len(x), check_positive_int("batch_size", batch_size)):
        q = model.encode(x[start:start + batch_size])
        means.append(np.asarray(q.mean(), np.float32))
        variances.append(np.asarray(q.variance(), np.float32))
    empty = np.zeros((0, model.latent_dim), np.float32)
    return (np.concatenate(means) if means else empty), (np.concatenate(variances) if variances else empty)


def interpolate(model, a: np.ndarray, b: np.ndarray, steps: int = 10) -> np.ndarray:
    """The decoder's means along the straight line between the posterior means of images `a`
    and `b` (shape (input_dim,) each), ends included: float32, shape (steps, input_dim)."""
    steps = check_positive_int("steps", steps)
    if steps < 2:
        from vae_zoo.core.errors import InvalidArgumentError

        raise InvalidArgumentError(f"`steps` must be at least 2 (the two ends). Received: steps={steps}")
    (za, zb), _ = embed(model, np.stack([a, b]))
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return np.asarray(model.decoder((1 - t) * za + t * zb).mean(), np.float32)
