"""Per-datapoint variance of SGVB estimators A (eq. 6) and B (eq. 7) and of their gradients.

For each of `--points` MNIST test images (fixed binarization), draws `--draws`
single-sample (L = 1) estimates of the bound and of its gradient with respect
to the encoder parameters phi (the decoder's gradients are the same under A and
B, since the two differ only in the KL term), and prints the variance averaged
over datapoints (and over parameters for the gradients). Run on an untrained
model and on a trained one: a preset if it is installed, else a model trained
here for `--epochs` epochs.

    python benchmarks/estimator_variance.py [--preset mnist-z20] [--points 20] [--draws 200]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # pfor's retracing notes

from vae_zoo import data  # noqa: E402
from vae_zoo.estimators import objectives  # noqa: E402
from vae_zoo.training import train as training  # noqa: E402


def variances(model, x: np.ndarray, draws: int) -> dict[str, float]:
    """Mean over datapoints of Var[estimate] and of mean_params Var[d estimate / d phi]."""
    phi = model.encoder.trainable_variables
    out = {}
    for estimator in ("A", "B"):
        value_var, grad_var = [], []
        for i, row in enumerate(x):
            xb = tf.constant(np.repeat(row[None], draws, axis=0))  # one row per noise draw
            with tf.GradientTape(persistent=True) as tape:
                posterior = model.encoder(xb)
                eps = tf.random.stateless_normal([1, draws, model.latent_dim], seed=[i, 7])
                z = objectives.reparameterize(posterior, eps)
                bound = objectives.ESTIMATORS[estimator](xb, posterior, model.prior(), model.decoder, z).elbo
            jac = tape.jacobian(bound, phi, experimental_use_pfor=True)
            flat = tf.concat([tf.reshape(j, [draws, -1]) for j in jac], axis=1)
            value_var.append(float(tf.math.reduce_variance(bound)))
            grad_var.append(float(tf.reduce_mean(tf.math.reduce_variance(flat, axis=0))))
        out[estimator] = (np.mean(value_var), np.mean(grad_var))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="mnist-z20")
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=20, help="training epochs if the preset is not available")
    args = parser.parse_args()
    from vae_zoo.core.errors import VaeZooError
    from vae_zoo.model import recipes
    from vae_zoo.zoo import registry
    from vae_zoo.zoo.presets import PRESETS

    spec = PRESETS[args.preset]
    x = data.test_set(spec.dataset, spec.likelihood == "bernoulli")[: args.points]
    untrained = training.build_model(spec.architecture, spec.recipe, 60_000)
    try:
        trained, how = registry.load(args.preset), f"preset {args.preset}"
    except VaeZooError:
        x_train = data.load(spec.dataset, "train")
        recipe = spec.recipe.replace(epochs=args.epochs)
        trained = training.build_model(spec.architecture, recipe, len(x_train))
        recipes.compile_model(trained, recipe, len(x_train) // recipe.batch_size)
        trained.fit(data.train_dataset(x_train, recipe.batch_size, seed=0, epochs=args.epochs),
                    epochs=args.epochs, steps_per_epoch=len(x_train) // recipe.batch_size, verbose=0)
        how = f"trained here, {args.epochs} epochs"
    print(f"{args.points} test points x {args.draws} draws, L = 1; gradients w.r.t. encoder parameters")
    print(f"{'model':<30} {'est':>3} {'Var[bound]':>12} {'mean Var[grad]':>15}")
    for label, model in (("untrained", untrained), (how, trained)):
        for estimator, (v, g) in variances(model, x, args.draws).items():
            print(f"{label:<30} {estimator:>3} {v:>12.3f} {g:>15.3e}", flush=True)


if __name__ == "__main__":
    main()
