"""The public API: every name works on every call, whatever was imported before."""

import subprocess
import sys
import textwrap

import pytest

import vae_zoo

SCRIPT = textwrap.dedent("""
    import importlib, pkgutil, sys, tempfile, types
    from pathlib import Path
    import numpy as np
    import vae_zoo

    out = Path(tempfile.mkdtemp())
    x = (np.random.default_rng(0).random((8, 784)) < 0.5).astype(np.float32)

    def use_every_public_name(round_):
        model = vae_zoo.VAE(input_dim=784, latent_dim=3, hidden_units=16, seed=0)
        model.compile("adam")
        model.fit(x, batch_size=4, epochs=1, verbose=0)
        assert vae_zoo.list_models()[0] == "mnist-z2"
        assert vae_zoo.load("mnist-z2", compile=False).latent_dim == 2
        vae_zoo.save_preset(model, out / f"preset-{round_}")
        assert vae_zoo.load(out / f"preset-{round_}").latent_dim == 3
        vae_zoo.export(model, out / f"onnx-{round_}", formats="onnx", parts="decoder")
        assert issubclass(vae_zoo.UnknownPresetError, vae_zoo.VaeZooError)
        assert issubclass(vae_zoo.PresetError, ValueError)

    use_every_public_name(1)
    use_every_public_name(2)
    for info in pkgutil.iter_modules(vae_zoo.__path__):
        if info.name != "__main__":
            importlib.import_module(f"vae_zoo.{info.name}")
    for name in vae_zoo.__all__:
        assert not isinstance(getattr(vae_zoo, name), types.ModuleType), name
    from vae_zoo import export
    assert callable(export) and not isinstance(export, types.ModuleType)
    use_every_public_name(3)
    print("ok")
""")


@pytest.mark.slow
def test_every_public_name_works_twice_and_after_importing_every_submodule():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


def test_no_submodule_bears_a_public_name():
    import pkgutil

    submodules = {info.name for info in pkgutil.iter_modules(vae_zoo.__path__)}
    assert not submodules & set(vae_zoo.__all__)
