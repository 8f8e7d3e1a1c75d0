"""Nothing is lost: writers killed (SIGKILL) at random moments, and racing writers.

After every kill the target is either the previous complete version or the new complete one
(its checksums verify and its parts belong together), and the next write succeeds.
"""

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import vae_zoo
from vae_zoo.data import datasets as data
from vae_zoo.training import train as training

pytestmark = pytest.mark.slow  # trains, or starts interpreters and workers

WRITER = Path(__file__).with_name("fault_writer.py")
KILLS = 5


def start(kind, target, *extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, str(WRITER), kind, str(target), *map(str, extra)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)


@contextlib.contextmanager
def writers(kind, target, *extra):
    """The writer process of `kind`, ready to fork writers (see fault_writer.py); ended after."""
    zygote = start(kind, target, *extra)
    try:
        assert zygote.stdout.readline().strip() == "zygote"
        yield zygote
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=60)


def ask(zygote, line):
    zygote.stdin.write(line + "\n")
    zygote.stdin.flush()


def kill_mid_write(zygote, rng):
    """A fresh writer, SIGKILLed at a random moment after its first complete write; returns once it is gone."""
    ask(zygote, "write")
    word, pid = zygote.stdout.readline().split()
    assert word == "ready"
    time.sleep(rng.uniform(0.0, 1.0))
    os.kill(int(pid), signal.SIGKILL)
    while Path(f"/proc/{pid}").exists():  # the writer's parent reaps it at once
        time.sleep(0.01)


def check_preset(target):
    model = vae_zoo.load(target)  # every file verifies against checksums.json
    version = vae_zoo.zoo.registry.read_card(target)["version"]
    assert np.all(model.weights[0].numpy() == version)  # weights and card belong together


def check_export(target):
    vae_zoo.verify(target)


def check_checkpoint(target):
    model, state = training.load_checkpoint(target)
    assert np.all(model.weights[0].numpy() == state["epoch"])  # model and state belong together


CHECKS = {"preset": check_preset, "export": check_export, "checkpoint": check_checkpoint}


@pytest.mark.parametrize("kind", sorted(CHECKS))
def test_a_killed_writer_leaves_the_old_or_the_new_version(kind, tmp_path):
    rng = random.Random(kind)
    target = tmp_path / kind
    with writers(kind, target) as zygote:
        for _ in range(KILLS):
            kill_mid_write(zygote, rng)
            CHECKS[kind](target)
    # ...and the next write, in this process, succeeds over whatever the kills left.
    if kind == "preset":
        model = vae_zoo.VAE(input_dim=784, latent_dim=3, hidden_units=64, seed=0)
        model.save_to_preset(target, card={"version": -1}, overwrite=True)
        assert vae_zoo.zoo.registry.read_card(target)["version"] == -1
    elif kind == "export":
        vae_zoo.export(vae_zoo.VAE(input_dim=784, latent_dim=3, hidden_units=64), target, formats="onnx",
                       parts="decoder", overwrite=True)
        vae_zoo.verify(target)
    else:
        model = vae_zoo.VAE(input_dim=784, latent_dim=3, hidden_units=64, seed=0)
        model.compile("adam")
        training.save_checkpoint(model, target, {"epoch": -1})
        assert training.load_checkpoint(target)[1]["epoch"] == -1


def test_a_killed_download_never_leaves_a_partial_file_in_the_cache(tmp_path, monkeypatch):
    rng = random.Random(0)
    source = data.locate(data.FREY, download=False)
    with writers("download", tmp_path, source) as zygote:
        for _ in range(KILLS):
            kill_mid_write(zygote, rng)
            cached = tmp_path / "vae_zoo" / "frey_rawface.mat"
            assert not cached.exists() or cached.read_bytes() == source.read_bytes()
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(data, "FREY", data.Source("frey_rawface.mat", source.as_uri(), data.FREY.sha256))
    assert data.load("frey", "test").shape == (200, 560)


def test_two_writers_racing_for_one_preset_path_one_wins_one_is_told(tmp_path):
    with writers("race-preset", tmp_path) as zygote:
        for round_ in range(3):
            target = tmp_path / f"race-{round_}"
            ask(zygote, f"race {target}")
            ready = [zygote.stdout.readline().split() for _ in range(2)]  # both imported, models built
            assert [word for word, _ in ready] == ["ready", "ready"], ready
            ask(zygote, "go")  # both write at this moment
            outcomes = sorted(zygote.stdout.readline().split() for _ in range(2))
            assert [word for word, _ in outcomes] == ["lost", "won"], outcomes
            card = json.loads((target / "card.json").read_text())
            assert card["version"] == int(outcomes[1][1]) and {pid for _, pid in outcomes} == {pid for _, pid in ready}
            vae_zoo.load(target)
