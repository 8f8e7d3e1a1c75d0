"""One training step's loss and gradients, for the Keras step (`VAE.train_step`) and the multi-worker
step alike: minus the mean bound plus the parameter prior, with the estimator's own gradients."""

from __future__ import annotations

import tensorflow as tf


def loss_and_gradients(model, x, seed, rows=None, divisor=None, prior_divisor=1):
    """The training loss of a batch (minus its mean bound, plus the parameter prior) and its
    gradients for `model.trainable_variables` (the prior's added in closed form). With the estimator
    "IW-DReG" the decoder's gradients are the IW bound's and the encoder's are DReG's
    (`objectives.iwae_dreg`).

    Args:
        model: a VAE.
        x: the batch (with `rows`, one worker's slice of a global batch; see `VAE._bound`).
        seed: the noise seed of this step.
        divisor: the bound is summed and divided by it (default: its mean over `x`).
        prior_divisor: the parameter prior's share is 1 / prior_divisor (workers split it).

    Returns:
        (bound, loss, gradients).
    """
    dreg = model.estimator == "IW-DReG"
    with tf.GradientTape(persistent=dreg) as tape:
        penalty = model._parameter_prior_penalty() / prior_divisor
        bound = model._bound(x, model.estimator, model.num_samples, seed, rows, surrogates=dreg)
        if dreg:
            bound, parts = bound
        mean = (lambda v: tf.reduce_mean(v)) if divisor is None else (lambda v: tf.reduce_sum(v) / divisor)
        loss = -mean(bound.elbo) + penalty
        if dreg:
            decoder_loss, encoder_loss = (-mean(part) + penalty for part in parts)
    variables = model.trainable_variables
    if not dreg:
        return bound, loss, model._with_prior_gradients(tape.gradient(loss, variables), variables, prior_divisor)
    grads = {}
    for part_loss, layer in ((decoder_loss, model.decoder), (encoder_loss, model.encoder)):
        grads.update(zip(map(id, layer.trainable_variables), tape.gradient(part_loss, layer.trainable_variables)))
    del tape
    return bound, loss, model._with_prior_gradients([grads[id(v)] for v in variables], variables, prior_divisor)
