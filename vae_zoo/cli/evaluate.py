"""`vae-zoo evaluate`: the measured numbers of a model card."""

from __future__ import annotations

import json
from pathlib import Path

from vae_zoo.cli.arguments import (
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    SEED,
    add_cluster_flags,
    add_command,
    join_cluster,
    load,
)


def cmd_evaluate(args) -> int:
    from vae_zoo.core.errors import InvalidArgumentError
    from vae_zoo.zoo import registry
    from vae_zoo.zoo.evaluation import evaluate

    if args.exact or args.ais:
        return _exact_or_ais(args)
    if args.write_card and (args.n_test is not None or args.n_train is not None or args.k != 5000):
        raise InvalidArgumentError("--write-card records the card's protocol only: the full test and training sets "
                                   f"and k=5000. Received: --n-test {args.n_test} --n-train {args.n_train} "
                                   f"--k {args.k}")
    cluster = join_cluster(args)
    model = load(args.model)
    sharded = None
    if cluster is not None:
        from vae_zoo.training import distributed

        def sharded(m, x, k, seed, verbose):
            return distributed.log_likelihood(m, x, k, seed, cluster, args.peer_timeout, verbose)
    if args.write_card and args.data is not None:
        raise InvalidArgumentError("--write-card records the card's own test data; measure other images without it. "
                                   f"Received: --data {args.data}")
    metrics = evaluate(model, k=args.k, n_test=args.n_test, seed=args.seed, verbose=not args.quiet,
                       log_likelihood=sharded, preset=args.model, data_path=args.data, n_train=args.n_train)
    if cluster is not None and not cluster.is_chief:
        print(f"Worker {cluster.index} done; the chief (worker 0) prints the metrics.")
        return 0
    print(json.dumps(metrics, indent=1) if args.json else metrics_table(metrics, args.model))
    if args.write_card:
        registry.update_card(args.model, metrics=metrics,
                             metrics_command=f"vae-zoo evaluate {args.model} --seed {args.seed}")
        print(f"Updated the model card of {args.model}")
    return 0


def _exact_or_ais(args) -> int:
    """`--exact`: log p(x) by quadrature (2-D and 3-D latent spaces) on the full test set; `--ais`: by
    AIS on the first 1,000 test images (--n-test to change); each added to the card with --write-card."""
    from vae_zoo.core.errors import InvalidArgumentError
    from vae_zoo.zoo import registry
    from vae_zoo.zoo.evaluation import AIS_TEST_IMAGES, ais_log_likelihood, evaluation_data, exact_log_likelihood

    if args.exact and args.ais:
        raise InvalidArgumentError("--exact and --ais are two measurements: run one at a time.")
    flag, key = ("--exact", "test_log_likelihood_exact") if args.exact else ("--ais", "test_log_likelihood_ais")
    protocol = "the full test set" if args.exact else f"the first {AIS_TEST_IMAGES:,} test images with --seed 0"
    extra = {"--n-test": args.n_test, "--data": args.data, "--seed": args.seed if args.ais and args.seed else None}
    extra = {name: value for name, value in extra.items() if value is not None}
    if args.write_card and extra:
        raise InvalidArgumentError(f"{flag} --write-card records the log p(x) of {protocol}: drop "
                                   f"{' and '.join(extra)}. Received: "
                                   + " ".join(f"{name} {value}" for name, value in extra.items()))
    model = load(args.model)
    chosen = evaluation_data(model, args.model, args.data)
    x = chosen.x_test[: args.n_test or (None if args.exact else AIS_TEST_IMAGES)]
    test_set = f"{len(x)} of {chosen.test_set}"
    progress = args.workdir / f"{Path(args.model).name}-{flag[2:]}.npz"
    if args.exact:
        result = exact_log_likelihood(model, x, test_set, verbose=not args.quiet, progress=progress)
    else:
        result = ais_log_likelihood(model, x, test_set, seed=args.seed, verbose=not args.quiet, progress=progress)
    if progress.exists():
        print(f"Progress: {progress} (the same command continues from it; delete it when you no longer need to)")
    print(json.dumps(result, indent=1) if args.json else metrics_table({key: result, "test_set": test_set},
                                                                         args.model))
    if args.write_card:
        card = registry.read_card(args.model)
        registry.update_card(args.model, metrics={**card.get("metrics", {}), key: result},
                             **{f"{flag[2:]}_command": f"vae-zoo evaluate {args.model} {flag} --write-card"})
        print(f"Updated the model card of {args.model}")
    return 0


_ROWS = (  # key of the metrics, what it is
    ("test_elbo_B", "test ELBO, estimator B (eq. 7), L = 1"),
    ("test_elbo_A", "test ELBO, estimator A (eq. 6), L = 1"),
    ("test_log_likelihood", "test log p(x) >= (importance-weighted bound, k = {k})"),
    ("test_log_likelihood_exact", "test log p(x), exact (quadrature, {grid})"),
    ("test_log_likelihood_ais", "test log p(x) ~ (AIS, {n} images, a stochastic lower bound)"),
    ("train_elbo_B", "train ELBO, estimator B, L = 1"),
)


def metrics_table(metrics: dict, model) -> str:
    """The metrics of `evaluate` as lines for people: each number with its standard error and what it is."""
    from vae_zoo.core.summaries import plus_minus

    lines = [f"{model} on {metrics.get('test_set', 'its test set')}; nats per image"]
    for key, label in _ROWS:
        value = metrics.get(key)
        if value:
            lines.append(f"  {label.format(**value):<62} {plus_minus(value, 2):>16}")
    if "train_set" in metrics and "train_elbo_B" in metrics:
        lines.append(f"  (train: {metrics['train_set']})")
    return "\n".join(lines + ["--json prints every field of the measurement."])


def add_parsers(sub) -> None:
    p = add_command(sub, "evaluate", cmd_evaluate, "test ELBO (A and B), importance-weighted log-likelihood, "
                    "train ELBO")
    p.add_argument("model", help="preset name or preset folder")
    p.add_argument("--k", type=NON_NEGATIVE_INT, default=5000,
                   help="importance samples per test point (default 5000; 0 skips)")
    p.add_argument("--data", type=Path, help="measure on these images (a .npy/.npz file, a folder of PNG/JPEG "
                   "images, or shards); default: a zoo preset's test set, or the held-out rows a model of your own "
                   "data recorded in its card")
    p.add_argument("--n-test", type=POSITIVE_INT, help="first N test points only (default: the full test set)")
    p.add_argument("--n-train", type=POSITIVE_INT, help="train ELBO on the first N training points only (default: "
                   "the full training set)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the Monte Carlo noise")
    p.add_argument("--write-card", action="store_true", help="record the metrics in the preset's card.json")
    p.add_argument("--exact", action="store_true", help="only log p(x), exactly, by quadrature over the latent "
                   "space (2-D and 3-D latent spaces; refused when the grid is too coarse for the model)")
    p.add_argument("--ais", action="store_true", help="only log p(x), by annealed importance sampling (16 "
                   "chains, 500 steps, 10 leapfrog steps; no encoder) on the first 1,000 test images (--n-test "
                   "to change): a stochastic lower bound per image, closer than the importance-weighted one")
    p.add_argument("--workdir", type=Path, default=Path("runs"), help="folder of the progress file of --exact and "
                   "--ais, from which the same command continues after an interruption (default: runs)")
    add_cluster_flags(p, "share the log p(x) estimate")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the measurement as JSON (every field)")
