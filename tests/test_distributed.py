"""Data-parallel training across worker processes (tf.distribute.MultiWorkerMirroredStrategy) on
127.0.0.1: the same weights as one process, resume after a SIGKILLed worker, a clear error when a
peer never answers, and the sharded log p(x) estimate. Every process has a time bound.

Each `vae-zoo` worker is a process of its own, forked from a server that imported TensorFlow once
(`forked_cli.py`: `cli.main` as the console script runs it, ~6 s of CPU less per worker)."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vae_zoo
from vae_zoo.core import cluster as cluster_lib
from vae_zoo.core.errors import InvalidArgumentError

pytestmark = pytest.mark.slow  # trains, or starts interpreters and workers

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
ENV.pop("TF_CONFIG", None)
TIME_BOUND = 300  # seconds any one process may take


def start(cli, args, cwd, index=None, workers=None, extra=(), tf_config=False):
    """A `vae-zoo` process of the server `cli`; a worker of `workers` given by flags, or by TF_CONFIG."""
    env, cluster = ENV, []
    if workers is not None and tf_config:
        env = {**ENV, "TF_CONFIG": cluster_lib.Cluster(tuple(workers), index).tf_config()}
    elif workers is not None:
        cluster = ["--workers", *workers, "--task-index", str(index)]
    return cli.start([*map(str, args), *cluster, *extra], cwd=cwd, env=env)


def finish(processes, bound=TIME_BOUND):
    """(returncode, stdout, stderr) of each process; all are killed once `bound` seconds have passed."""
    deadline = time.time() + bound
    results = []
    for p in processes:
        try:
            out, err = p.communicate(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for q in processes:
                q.kill()
            pytest.fail(f"a worker did not finish within {bound} s")
        results.append((p.returncode, out, err))
    return results


def run_cluster(cli, args, cwd, n, extra=(), tf_config=False):
    workers = cluster_lib.local_workers(n)
    results = finish([start(cli, args, cwd, i, workers, extra, tf_config) for i in range(n)])
    for rc, out, err in results:
        assert rc == 0, err[-3000:]
    return results


@pytest.fixture(scope="module")
def grey_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    np.save(folder / "d.npy", np.random.default_rng(0).random((1200, 64)).astype(np.float32))
    return folder


def train_args(out, workdir, epochs=3):
    return ["train", "--data", "d.npy", "--latent-dim", "2", "--hidden", "16", "--epochs", epochs,
            "--batch-size", 60, "--binarize", "--seed", 0, "--out", out, "--workdir", workdir]


def max_difference(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(vae_zoo.load(a).get_weights(), vae_zoo.load(b).get_weights()))


@pytest.fixture(scope="module")
def one_process(grey_data, forked_cli):
    result = forked_cli.run(train_args("one", "w1"), cwd=grey_data, env=ENV, timeout=TIME_BOUND)
    assert result.returncode == 0, result.stderr[-3000:]
    return grey_data / "one"


@pytest.mark.parametrize("n", [2, 3])
def test_workers_train_the_weights_of_one_process(grey_data, one_process, forked_cli, n):
    # the workers given by flags (2), or by TF_CONFIG (3)
    results = run_cluster(forked_cli, train_args(f"w{n}-out", f"w{n}"), grey_data, n, tf_config=n == 3)
    assert "Saved preset to" in results[0][1]
    assert all("the chief (worker 0) writes the preset" in out for _, out, _ in results[1:])
    # 54 steps of Adam from the same seed and global batches: float summation order only
    # (measured: 9.4e-7 for 2 workers).
    assert max_difference(one_process, grey_data / f"w{n}-out") < 1e-5
    one = json.loads((one_process / "card.json").read_text())
    many = json.loads((grey_data / f"w{n}-out" / "card.json").read_text())
    # the held-out log p(x), its batches shared out across the workers, is the one-process number
    assert many["metrics"]["test_log_likelihood"] == one["metrics"]["test_log_likelihood"]
    assert [r["epoch"] for r in many["training"]["log"]] == [1, 2, 3]
    assert not (grey_data / f"w{n}" / "worker-1").exists()  # only the chief writes


def test_sigkilled_worker_then_resume_gives_the_uninterrupted_weights(grey_data, forked_cli):
    args = train_args("killed", "wk", epochs=20)  # a checkpoint every 2 epochs (at the held-out measurements)
    reference = run_cluster(forked_cli, train_args("whole", "ww", epochs=20), grey_data, 2)
    assert "Saved preset" in reference[0][1]
    workers = cluster_lib.local_workers(2)
    timeout = ["--peer-timeout", "20"]
    processes = [start(forked_cli, args, grey_data, i, workers, timeout) for i in range(2)]
    state = grey_data / "wk" / "killed" / "checkpoint" / "state.json"
    deadline = time.time() + TIME_BOUND
    while not (state.is_file() and json.loads(state.read_text())["epoch"] >= 4):
        assert time.time() < deadline and processes[0].poll() is None, "no checkpoint appeared"
        time.sleep(0.05)
    processes[1].send_signal(signal.SIGKILL)
    (rc0, _, err0), _ = finish(processes, bound=120)
    assert rc0 == 2 and ("lost its peers" in err0 or "heard nothing from its peers" in err0), err0[-2000:]
    epoch = json.loads(state.read_text())["epoch"]
    assert 4 <= epoch < 20 and not (grey_data / "killed").exists()
    resumed = run_cluster(forked_cli, args, grey_data, 2, extra=["--resume"])
    assert "Saved preset" in resumed[0][1]
    assert max_difference(grey_data / "whole", grey_data / "killed") == 0.0


def test_a_worker_without_peers_stops_with_a_clear_error_in_time(grey_data, forked_cli):
    workers = cluster_lib.local_workers(2)
    started = time.time()
    alone = start(forked_cli, train_args("alone", "wa"), grey_data, 0, workers, ["--peer-timeout", "5"])
    [(rc, _, err)] = finish([alone], bound=120)
    assert rc == 2 and time.time() - started < 60
    assert "heard nothing from its peers for 5 s while connecting. Start every worker" in err
    assert not (grey_data / "alone").exists()


def test_sharded_evaluation_equals_one_process(tmp_path, forked_cli):
    args = ["evaluate", "mnist-z2", "--k", "20", "--n-test", "300", "--n-train", "300", "--quiet", "--json"]
    one = forked_cli.run(args, env=ENV, timeout=TIME_BOUND)
    assert one.returncode == 0, one.stderr[-3000:]
    results = run_cluster(forked_cli, args, tmp_path, 3)
    many, single = json.loads(results[0][1]), json.loads(one.stdout)
    for metrics in (many, single):
        metrics["test_log_likelihood"].pop("seconds")  # wall time, the one thing that differs
    assert many == single
    assert results[1][1].startswith("Worker 1 done")


def test_cluster_from_flags_and_tf_config():
    assert cluster_lib.cluster_from() is None or os.environ.get("TF_CONFIG")
    assert cluster_lib.cluster_from(["a:1", "b:2"], 1, environ={}) == cluster_lib.Cluster(("a:1", "b:2"), 1)
    tfjob = {"cluster": {"chief": ["c:1"], "worker": ["w:1", "w:2"]}, "task": {"type": "worker", "index": 1}}
    assert cluster_lib.cluster_from(environ={"TF_CONFIG": json.dumps(tfjob)}) == \
        cluster_lib.Cluster(("c:1", "w:1", "w:2"), 2)
    single = {"cluster": {"worker": ["w:1"]}, "task": {"type": "worker", "index": 0}}
    assert cluster_lib.cluster_from(environ={"TF_CONFIG": json.dumps(single)}) is None
    for bad, message in [((["a:1", "b:2"], None), "go together"), ((["a:1", "b"], 0), "HOST:PORT"),
                         ((["a:1", "a:1"], 0), "repeat"), ((["a:1", "b:2"], 2), "0..1")]:
        with pytest.raises(InvalidArgumentError, match=message):
            cluster_lib.cluster_from(*bad, environ={})
    with pytest.raises(InvalidArgumentError, match="TF_CONFIG"):
        cluster_lib.cluster_from(environ={"TF_CONFIG": "{not json"})


def test_a_batch_that_does_not_split_across_workers_is_refused():
    from vae_zoo.data import train_dataset

    with pytest.raises(InvalidArgumentError, match="multiple of 3"):
        train_dataset(np.zeros((200, 4), np.float32), 100, False, worker=(0, 3))


def test_workers_stream_their_own_shards(grey_data, forked_cli):
    result = forked_cli.run(["shard", "--data", "d.npy", "--out", "sh", "--shard-size", "250"], cwd=grey_data,
                            env=ENV, timeout=TIME_BOUND)
    assert result.returncode == 0, result.stderr
    args = train_args("from-shards", "ws")
    args[args.index("d.npy")] = "sh"
    run_cluster(forked_cli, args, grey_data, 2)
    card = json.loads((grey_data / "from-shards" / "card.json").read_text())
    # 1,080 training images in shards of 250: worker 0 reads files 0, 2, 4 (580 images), worker 1
    # files 1, 3 (500): 500 // 30 = 16 steps of the global batch 60 per epoch.
    assert card["training"]["samples_seen"] == 3 * 16 * 60
    assert np.isfinite(card["metrics"]["test_log_likelihood"]["mean"])


def test_finetune_across_workers_equals_one_process(tmp_path, forked_cli):
    from vae_zoo import data

    np.save(tmp_path / "digits.npy", data.load("mnist", "test")[:700])
    args = ["finetune", "mnist-z2", "--data", "digits.npy", "--binarize", "--epochs", 2, "--batch-size", 60,
            "--workdir", "w"]
    one = forked_cli.run([*args, "--out", "one"], cwd=tmp_path, env=ENV, timeout=TIME_BOUND)
    assert one.returncode == 0, one.stderr[-3000:]
    run_cluster(forked_cli, [*args, "--out", "two"], tmp_path, 2)
    # Adam divides by the gradients' scale, so summation-order differences in near-zero gradient
    # entries move weights by up to a fraction of lr (1e-4) per step; measured: 1.4e-5 after 20 steps.
    assert max_difference(tmp_path / "one", tmp_path / "two") < 1e-4
    cards = [json.loads((tmp_path / name / "card.json").read_text()) for name in ("one", "two")]
    assert cards[0]["metrics"]["source_preset_test_log_likelihood"] == \
        cards[1]["metrics"]["source_preset_test_log_likelihood"]


json_values = st.recursive(st.none() | st.booleans() | st.integers(-3, 70000) | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=3), max_leaves=8)
tf_configs = st.fixed_dictionaries({"cluster": st.dictionaries(st.sampled_from(["chief", "worker", "ps"]),
                                                               st.lists(st.text(max_size=12) | json_values, max_size=3)
                                                               | json_values),
                                    "task": st.fixed_dictionaries({"type": st.sampled_from(["chief", "worker", "ps"])
                                                                   | json_values, "index": json_values})}) | json_values


@settings(max_examples=300, deadline=None)
@given(config=tf_configs, raw=st.booleans())
def test_any_tf_config_is_a_cluster_or_a_one_line_error(config, raw):
    text = str(config) if raw else json.dumps(config)
    try:
        cluster = cluster_lib.cluster_from(environ={"TF_CONFIG": text})
    except InvalidArgumentError as e:
        assert "\n" not in str(e)
        return
    assert cluster is None or (0 <= cluster.index < cluster.size and all(":" in w for w in cluster.workers))


@settings(max_examples=200, deadline=None)
@given(workers=st.lists(st.text(max_size=20), min_size=1, max_size=4), index=st.integers(-2, 5))
def test_any_worker_flags_are_a_cluster_or_a_one_line_error(workers, index):
    try:
        cluster = cluster_lib.cluster_from(workers, index, environ={})
    except InvalidArgumentError as e:
        assert "\n" not in str(e)
        return
    assert cluster is None or 0 <= cluster.index < cluster.size


@pytest.mark.parametrize("other", [["--holdout", "0.2"], ["--epochs", "4"], ["--latent-dim", "3"]],
                         ids=["holdout", "epochs", "latent-dim"])
def test_workers_started_differently_all_stop_with_one_line_naming_it(grey_data, tmp_path, forked_cli, other):
    workers = cluster_lib.local_workers(2)
    args = [str(a) for a in train_args(tmp_path / "out", tmp_path / "runs")]
    changed = list(args)
    if other[0] in changed:
        changed[changed.index(other[0]) + 1] = other[1]
    else:
        changed += other
    results = finish([start(forked_cli, a, grey_data, i, workers) for i, a in enumerate([args, changed])])
    for rc, _, err in results:  # the chief as well as the other worker
        assert rc == 2 and "The workers were started with different settings" in err, err[-2000:]
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()
