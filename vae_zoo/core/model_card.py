"""The human-readable files of a preset folder, generated from its card.json: `README.md` (a
model card with the YAML front matter Hugging Face model cards use: metrics, data, intended
use and limits, licence, citation) and keras-hub's `metadata.json`, so the folder can be
uploaded to a model hub as it is."""

from __future__ import annotations

import json

README, METADATA = "README.md", "metadata.json"

CITATION = """@inproceedings{kingma2014aevb,
  title = {Auto-Encoding Variational Bayes},
  author = {Kingma, Diederik P. and Welling, Max},
  booktitle = {2nd International Conference on Learning Representations (ICLR)},
  year = {2014},
  eprint = {1312.6114},
  archivePrefix = {arXiv}
}"""


def _number(value: dict | None) -> str:
    if not value:
        return "-"
    se = value.get("standard_error")
    return f"{value['mean']:.2f}" + (f" ± {se:.2f}" if se is not None else "")


def readme(card: dict, config: dict, name: str) -> str:
    """The README.md of a preset folder: what the model is, what it was trained on and how, what
    was measured (every number is the card's), how to use it, its limits, licence and citation."""
    model = config.get("config", {})
    data, metrics, recipe = card.get("data") or {}, card.get("metrics") or {}, card.get("recipe") or {}
    dataset = data.get("dataset") or data.get("source") or (card.get("source") or {}).get("preset")
    architecture = (f"{model.get('input_dim')}-{'-'.join(map(str, model.get('hidden_units', [])))}-"
                    f"{model.get('latent_dim')}, {model.get('likelihood')} decoder")
    front = ["---", "library_name: keras", "license: apache-2.0", "tags:", "- variational-autoencoder",
             "- aevb", "- keras", "- vae-zoo"]
    if data.get("dataset"):
        front += ["datasets:", f"- {data['dataset']}"]
    if metrics:
        front += ["model-index:", f"- name: {name}", "  results:", "  - task:", "      type: density-estimation",
                  "    dataset:", f"      name: {dataset}", f"      type: {dataset}", "    metrics:"]
        for key, label in (("test_log_likelihood", "test log p(x), nats"), ("test_elbo_B", "test ELBO (B), nats")):
            if metrics.get(key):
                front += [f"    - type: {key}", f"      name: {label}", f"      value: {metrics[key]['mean']}"]
    front += ["---", ""]
    lines = [f"# {name}", "", card.get("description", "A variational auto-encoder (AEVB)."), "",
             f"Architecture: {architecture}; encoder q(z|x) a diagonal Gaussian, prior p(z) = N(0, I). "
             "Made with vae-zoo, after Kingma & Welling, [*Auto-Encoding Variational Bayes*]"
             "(https://arxiv.org/abs/1312.6114).", "", "## Use", "", "```python", "import vae_zoo", "",
             f'model = vae_zoo.load("{name}")  # or the path of this folder',
             "x = model.sample(16, seed=0)", "```", ""]
    described = [f"- {key}: {value}" for key, value in data.items()
                 if isinstance(value, str | int | float) and key != "sha256"]
    described += [f"- sha256 of the pixels: `{data['sha256']}`"] if data.get("sha256") else []
    lines += ["## Data", "", *(described or ["The card records no training data. Describe it when saving: "
                                             '`model.save_to_preset(path, card={"data": {"dataset": ...}})`.']), ""]
    if recipe:
        lines += ["## Training", "", "- recipe: " + ", ".join(f"{k} {v}" for k, v in recipe.items()
                                                             if isinstance(v, str | int | float))]
        if (card.get("training") or {}).get("command"):
            lines += [f"- command: `{card['training']['command']}`"]
        lines += [""]
    if metrics:
        lines += ["## Measured", "", f"{metrics.get('units', 'nats per datapoint')}; {metrics.get('test_set', '')}", "",
                  "| metric | value |", "| --- | --- |"]
        for key in ("test_log_likelihood", "test_log_likelihood_exact", "test_log_likelihood_ais", "test_elbo_B",
                    "test_elbo_A", "train_elbo_B", "source_preset_test_log_likelihood"):
            if metrics.get(key):
                lines += [f"| {key} | {_number(metrics[key])} |"]
        if metrics.get("test_log_likelihood"):
            lines += ["", "test_log_likelihood is importance-weighted (k samples of the encoder's q(z|x)): a lower "
                      "bound in expectation."]
        if metrics.get("test_log_likelihood_exact"):
            lines += ["test_log_likelihood_exact integrates p(x|z) p(z) over a grid of z "
                      f"({metrics['test_log_likelihood_exact'].get('grid', '')}): exact up to the grid's error."]
        if card.get("published"):
            lines += [f"Published for this model: {card['published']['test_log_likelihood']} "
                      f"({card['published']['source']})."]
        if metrics.get("test_log_likelihood_ais"):
            ais = metrics["test_log_likelihood_ais"]
            lines += [f"test_log_likelihood_ais: {ais.get('kind', 'AIS')}, on {ais.get('test_set', 'the test set')}."]
            if "flagged" in ais:
                lines += [f"On {ais['flagged']} of its {ais.get('n', '')} images the estimate falls by more than 0.5 "
                          "nats without its best chain of 16: there it rests on one chain."]
        if card.get("metrics_command"):
            lines += ["", f"Reproduce with `{card['metrics_command']}`."]
        for key, what in (("exact_command", "The exact value"), ("ais_command", "The AIS estimate")):
            if card.get(key):
                lines += [f"{what}: `{card[key]}`."]
        lines += [""]
    lines += ["## Intended use and limits", "",
              "A generative model of small grayscale images of the kind it was trained on: sampling, "
              "reconstruction, latent codes, log-likelihood scores. It has not been measured on other data; "
              "its log p(x) of images unlike the training data is low, which is what makes it an anomaly score "
              "for such data and no judge of anything else. It is a research model, not a product.", "",
              "## Licence", "", "Apache-2.0 (the weights and the code). The training data's own terms apply to it: "
              "MNIST (CC BY-SA 3.0), Frey Face (Brendan Frey, via Sam Roweis' data page), or the user's data.", "",
              "## Citation", "", "```bibtex", CITATION, "```", ""]
    return "\n".join(front + lines)


def metadata(config: dict, card: dict) -> str:
    """keras-hub's metadata.json: the Keras version and the parameter count, and when it was saved."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        keras_version = version("keras")
    except PackageNotFoundError:
        keras_version = None
    model = config.get("config", {})
    hidden = [model.get("input_dim", 0), *model.get("hidden_units", []), model.get("latent_dim", 0)]
    heads = 2 if model.get("likelihood") == "gaussian" else 1
    dense = sum(a * b + b for a, b in zip(hidden, hidden[1:-1]))  # the encoder's body
    count = (dense + (hidden[-2] + 1) * 2 * hidden[-1]  # + its mean and log-variance heads
             + sum(a * b + b for a, b in zip(hidden[::-1], hidden[::-1][1:-1]))  # the decoder's body
             + (hidden[1] + 1) * heads * hidden[0]) if len(hidden) > 2 else None
    return json.dumps({"keras_version": keras_version, "vae_zoo_version": card.get("package_version"),
                       "parameter_count": count, "date_saved": card.get("saved")}, indent=1)
