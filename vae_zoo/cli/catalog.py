"""`vae-zoo list` and `vae-zoo info`: the presets and their model cards."""

from __future__ import annotations

import json

from vae_zoo.cli.arguments import add_command


def _metric(card: dict, key: str) -> str:
    value = card.get("metrics", {}).get(key)
    return f"{value['mean']:.2f}" if value else "-"


def cmd_list(args) -> int:
    from vae_zoo.core import preset_format as registry  # the cards alone: no TensorFlow
    from vae_zoo.zoo.presets import PRESETS

    print(f"{'name':<20} {'data':<6} {'z':>4} {'hidden':>7} {'likelihood':<10} {'test ELBO':>10} "
          f"{'test log p(x) >= (IW)':>21} {'AIS':>8} {'exact':>8} {'train ELBO':>10}")
    shipped = registry.shipped_presets()
    for name, spec in PRESETS.items():
        if name not in shipped:
            continue
        card = registry.read_card(name)
        ll = _metric(card, "test_log_likelihood")
        k = card.get("metrics", {}).get("test_log_likelihood", {}).get("k")
        hidden = "x".join(map(str, [spec.hidden_units] if isinstance(spec.hidden_units, int) else spec.hidden_units))
        print(f"{name:<20} {spec.dataset:<6} {spec.latent_dim:>4} {hidden:>7} {spec.likelihood:<10} "
              f"{_metric(card, 'test_elbo_B'):>10} {ll + (f' (k={k})' if k else ''):>21} "
              f"{_metric(card, 'test_log_likelihood_ais'):>8} {_metric(card, 'test_log_likelihood_exact'):>8} "
              f"{_metric(card, 'train_elbo_B'):>10}")
    print("\nnats per image. test log p(x) >= (IW): the importance-weighted bound, the encoder's q(z|x) as proposal "
          "(a lower bound in expectation); AIS: annealed importance sampling from the prior on the first 1,000 test "
          "images, a closer stochastic lower bound (`vae-zoo evaluate NAME --ais`); exact: by quadrature over z "
          "(`vae-zoo evaluate NAME --exact`).")
    untrained = [name for name in PRESETS if name not in shipped]
    if untrained:
        print(f"\nnot in the presets folder yet (`vae-zoo train NAME` trains them): {', '.join(untrained)}")
    print(f"\npresets folder: {registry.presets_dir()}; `vae-zoo info NAME` shows a model card")
    return 0


def cmd_info(args) -> int:
    from vae_zoo.core import preset_format as registry  # the cards alone: no TensorFlow
    from vae_zoo.core.summaries import plus_minus

    card = registry.read_card(args.model)
    if args.json:
        print(json.dumps(card, indent=1))
        return 0
    training = card.get("training", {})
    lines = [f"{card.get('name', args.model)}: {card.get('description', '')}", ""]
    data = card.get("data", {})
    if "sha256" in data:  # the user's own data
        lines += [f"data        {data['source']} ({data['kind']}, {data['examples']} examples of {data['input_dim']} "
                  f"pixels, sha256 {data['sha256'][:16]}...); {data['split']}"]
        if card.get("source"):
            source = card["source"]
            lines += [f"source      {source['preset']} (weights sha256 {source['weights_sha256'][:16]}...)"]
    elif "dataset" in data:
        lines += [f"data        {data['dataset']}: train {data.get('train')}; test {data.get('test')}"]
    else:
        shape = data.get("image_shape")
        lines += ["data        not recorded" + (f" (images {shape[0]} high x {shape[1]} wide)" if shape else "")]
    if card.get("source") and "sha256" not in data:
        source = card["source"]
        lines += [f"source      {source['preset']} (weights sha256 {str(source.get('weights_sha256'))[:16]}...; "
                  "its card is under `source` in --json)"]
    if "scaling" in data or "binarization" in data:
        lines += [f"            scaling {data.get('scaling', '-')}; binarization: {data.get('binarization', '-')}"]
    recipe = card.get("recipe", {})
    if recipe:
        drops = ", ".join(f"{lr:g} from epoch {e}" for e, lr in recipe.get("lr_drops", []))
        lines += [f"recipe      {recipe['optimizer']} lr {recipe['learning_rate']:g}" + (f" ({drops})" if drops else "")
                  + f", batch {recipe['batch_size']}, estimator {recipe['estimator']}, L={recipe['num_samples']}, "
                  f"seed {recipe['seed']}" + (", N(0, I) parameter prior" if recipe.get("parameter_prior") else "")]
    if training:
        lines += [f"training    {training['epochs']} epochs, {training['samples_seen']:,} samples, "
                  f"{training['wall_seconds'] / 60:.1f} min on {training['machine']}",
                  f"            command: {training['command']}"]
    metrics = card.get("metrics")
    if metrics:
        ll = metrics.get("test_log_likelihood")
        lines += [f"metrics     ({metrics['units']}; {metrics['test_set']})",
                  f"            test ELBO (B, L=1)  {plus_minus(metrics['test_elbo_B'], 2)}",
                  f"            test ELBO (A, L=1)  {plus_minus(metrics['test_elbo_A'], 2)}"]
        if ll:
            lines += [f"            test log p(x)       {plus_minus(ll, 2)} "
                      f"(importance sampling, k={ll['k']})"]
        before = metrics.get("source_preset_test_log_likelihood")
        if before:
            lines += [f"            before fine-tuning  {plus_minus(before, 2)} "
                      f"(the source preset's log p(x), same rows)"]
        if "train_elbo_B" in metrics:
            lines += [f"            train ELBO (B)      {metrics['train_elbo_B']['mean']:.2f} ({metrics['train_set']})"]
        if card.get("metrics_command"):
            lines += [f"            reproduce with: {card['metrics_command']}"]
    else:
        lines += ["metrics     not measured yet: vae-zoo evaluate NAME --write-card"]
    lines += [f"weights     sha256 {card.get('weights_sha256')}, vae-zoo {card.get('package_version')}"]
    print("\n".join(lines))
    return 0


def add_parsers(sub) -> None:
    # These read model cards only: they start without TensorFlow.
    add_command(sub, "list", cmd_list, "list the presets with their headline test numbers").set_defaults(
        needs_tensorflow=False)

    p = add_command(sub, "info", cmd_info, "show a preset's model card")
    p.set_defaults(needs_tensorflow=False)
    p.add_argument("model", help="preset name or preset folder")
    p.add_argument("--json", action="store_true", help="print the raw card.json")
