"""Training: checkpoints and exact resume."""

import numpy as np
import pytest

from vae_zoo.model.recipes import RECIPES
from vae_zoo.training import train as training

pytestmark = pytest.mark.slow  # trains, or starts interpreters and workers

ARCH = dict(input_dim=784, latent_dim=8, hidden_units=64)


def assert_same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def run(x, recipe, directory, resume=False, method="aevb"):
    model = training.build_model(ARCH, recipe, len(x), method)
    return training.fit_with_checkpoints(model, x, recipe, directory, binarize=True, x_test=x[:200],
                                         resume=resume, eval_every=1, verbose=0)


@pytest.mark.parametrize("method, recipe", [
    ("aevb", "adam"), ("wake-sleep", "adam"), ("mcem", "adam"),
    # The paper's Adagrad through its warm-up, for a method that trains part of its variables (MCEM: 5
    # updates per step, so the 101-update warm-up ends in epoch 3; the resume comes after epoch 1).
    ("mcem", "paper")])
def test_resumed_run_equals_uninterrupted_run(tmp_path, mnist_subset, method, recipe):
    x = mnist_subset[0][:1000]
    recipe = RECIPES[recipe].replace(epochs=3, lr_drops=((2, 1e-4),), steps_per_execution=5)
    full, state = run(x, recipe, tmp_path / "full", method=method)
    run(x, recipe.replace(epochs=1), tmp_path / "split", method=method)
    resumed, state2 = run(x, recipe, tmp_path / "split", resume=True, method=method)
    assert type(resumed) is type(full) is training.METHODS[method]
    assert_same_weights(full, resumed)
    assert [r["epoch"] for r in state2["log"]] == [1, 2, 3]
    assert state2["log"][-1]["samples_seen"] == 3000 and "test_elbo" in state2["log"][-1]
    assert state["log"] == state2["log"]


def test_same_seed_same_weights(tmp_path, mnist_subset):
    x = mnist_subset[0][:500]
    recipe = RECIPES["paper"].replace(epochs=1)
    a, _ = run(x, recipe, tmp_path / "a")
    b, _ = run(x, recipe, tmp_path / "b")
    assert_same_weights(a, b)


def test_existing_checkpoint_is_not_overwritten(tmp_path, mnist_subset):
    x = mnist_subset[0][:500]
    recipe = RECIPES["adam"].replace(epochs=1)
    run(x, recipe, tmp_path / "c")
    with pytest.raises(FileExistsError, match="resume=True"):
        run(x, recipe, tmp_path / "c")


def test_ctrl_c_leaves_a_checkpoint_to_resume_from(tmp_path, mnist_subset, monkeypatch):
    x = mnist_subset[0][:1000]
    recipe = RECIPES["adam"].replace(epochs=3, steps_per_execution=5)
    original = training.EpochCheckpoint.on_epoch_end

    def interrupt_after_epoch_2(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "CHECKPOINT_STEPS", 1)  # save every epoch
    monkeypatch.setattr(training.EpochCheckpoint, "on_epoch_end", interrupt_after_epoch_2)
    with pytest.raises(KeyboardInterrupt, match="checkpoint of epoch 2 is in .*--resume"):
        run(x, recipe, tmp_path / "run")
    monkeypatch.setattr(training.EpochCheckpoint, "on_epoch_end", original)
    resumed, state = run(x, recipe, tmp_path / "run", resume=True)
    full, _ = run(x, recipe, tmp_path / "full")
    assert state["epoch"] == 3
    assert_same_weights(full, resumed)


def test_resume_refuses_a_different_recipe(tmp_path, mnist_subset):
    x = mnist_subset[0][:500]
    recipe = RECIPES["adam"].replace(epochs=1)
    run(x, recipe, tmp_path / "r")
    with pytest.raises(ValueError, match=r"another recipe.*'learning_rate': \(0.001, 0.01\)"):
        run(x, recipe.replace(epochs=2, learning_rate=0.01), tmp_path / "r", resume=True)


def test_two_runs_into_one_folder_the_second_is_refused(tmp_path, mnist_subset):
    from vae_zoo.core.errors import OutputExistsError
    from vae_zoo.core.io import exclusive_lock

    with exclusive_lock(tmp_path / "r", "training"):  # as another process training there would hold it
        with pytest.raises(OutputExistsError, match="Another process is training"):
            run(mnist_subset[0][:500], RECIPES["adam"].replace(epochs=1), tmp_path / "r")
    run(mnist_subset[0][:500], RECIPES["adam"].replace(epochs=1), tmp_path / "r")  # free again


def test_every_resume_checks_the_checkpoints_model_and_its_tie_to_the_state(tmp_path):
    """A checkpoint of another architecture is refused on resume whatever path resumes (it is checked
    in `start_or_resume`), and a model.keras swapped in from another run is refused too."""
    import shutil

    from vae_zoo.core.errors import InvalidArgumentError, TrainingError
    from vae_zoo.training.checkpoints import CHECKPOINT, CHECKPOINT_DIR

    x = (np.random.default_rng(0).random((200, 784)) < 0.3).astype(np.float32)
    recipe = RECIPES["adam"].replace(epochs=1, batch_size=100, seed=0)

    def fit(directory, latent_dim, resume=False, epochs=1):
        model = training.build_model(dict(input_dim=784, latent_dim=latent_dim, hidden_units=16), recipe, len(x))
        return training.fit_with_checkpoints(model, x, recipe.replace(epochs=epochs), directory, binarize=False,
                                             resume=resume, verbose=0)

    fit(tmp_path / "z2", 2)
    with pytest.raises(InvalidArgumentError, match="latent_dim"):
        fit(tmp_path / "z2", 3, resume=True, epochs=2)
    fit(tmp_path / "z2-other", 2)
    fit(tmp_path / "z2-other", 2, resume=True, epochs=2)  # another step of the same architecture
    shutil.copy(tmp_path / "z2-other" / CHECKPOINT_DIR / CHECKPOINT, tmp_path / "z2" / CHECKPOINT_DIR / CHECKPOINT)
    with pytest.raises(TrainingError, match="replaced or changed"):
        fit(tmp_path / "z2", 2, resume=True, epochs=2)
