"""Data-parallel training and evaluation across worker processes, on TensorFlow's
`tf.distribute.MultiWorkerMirroredStrategy` (one replica per worker, ring all-reduce).

Each worker computes the gradient of its slice of the global minibatch, with that slice of
the global batch's noise; the gradients are summed by one all-reduce per step and every
worker applies the same update. So N steps on W workers give the weights of N steps in one
process (up to float summation order), and a run is a pure function of its seed.

Why not `Model.fit`: under a multi-worker strategy Keras 3 reduces each metric a train step
returns with `strategy.reduce("MEAN", value, axis=0)` (`reduce_per_replica`, reduction
"auto" -> "mean"); `axis=0` asks to also average over the first dimension of the value, and
a scalar metric has none: "Invalid reduction dimension 0 for input with 0 dimensions"
(tensorflow#72388, keras#20585). The loop here reduces explicitly and leaves
single-process `fit` as it is.

The chief (worker 0) alone reads and writes checkpoints, logs and the preset: at start it
sends its weights, optimizer state and epoch to the others (an all-reduce to which they add
zeros), so workers need no shared disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

from vae_zoo.core.cluster import Cluster
from vae_zoo.core.errors import ClusterError, InvalidArgumentError, TrainingError, first_line
from vae_zoo.core.io import exclusive_lock
from vae_zoo.core.validation import worker_batch_size
from vae_zoo.data import datasets as data_lib
from vae_zoo.data.shards import Shards
from vae_zoo.estimators.marginal_likelihood import shard_rows
from vae_zoo.model.recipes import Recipe, compile_model
from vae_zoo.model.vae import VAE
from vae_zoo.training.checkpoints import CHECKPOINT_STEPS, EpochCheckpoint, _kept, start_or_resume

# Seconds a worker waits for its peers (to connect, or to finish a step) before it gives up.
DEFAULT_TIMEOUT = 300
EXIT_CODE = 2  # a usage-level failure, as the command line's other one-line errors


class Watchdog:
    """Ends the process with a one-line error if `kick()` is not called for `timeout` seconds
    (a peer that never connects or stopped answering would otherwise leave collectives waiting)."""

    def __init__(self, cluster: Cluster, timeout: float):
        self.cluster, self.timeout = cluster, timeout
        self.activity = "connecting"
        self._last = time.monotonic()
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def kick(self, activity: str | None = None) -> None:
        self._last = time.monotonic()
        self.activity = activity or self.activity

    def stop(self) -> None:
        self._stop.set()

    def _watch(self):
        while not self._stop.wait(1.0):
            if time.monotonic() - self._last > self.timeout:
                print(f"error: {self.message()}", file=sys.stderr, flush=True)
                os._exit(EXIT_CODE)

    def message(self) -> str:
        return _no_answer(self.cluster, self.timeout, self.activity)


def _no_answer(c: Cluster, timeout: float, activity: str) -> str:
    return (f"worker {c.index} of {c.size} ({c.workers[c.index]}) heard nothing from its peers for {timeout:g} s "
            f"while {activity}. Start every worker with the same --workers list (or TF_CONFIG cluster) and check "
            "each can reach the others' HOST:PORT; after a worker stopped, restart all with --resume to continue "
            "from the chief's last checkpoint (--peer-timeout sets the wait).")


_connected: dict = {}


def connect(cluster: Cluster, timeout: float = DEFAULT_TIMEOUT):
    """Joins the cluster (once per process, before any other TensorFlow work: collectives are
    configured at startup) and returns the strategy.

    Raises:
        ClusterError: a peer did not answer within `timeout` seconds (`_rendezvous`); later
            silences of that length end the process with a one-line error (`Watchdog`).
    """
    if _connected:
        if _connected["cluster"] != cluster:
            raise InvalidArgumentError("This process already joined another cluster.")
        return _connected["strategy"]
    os.environ["TF_CONFIG"] = cluster.tf_config()
    _rendezvous(cluster, timeout)
    watchdog = Watchdog(cluster, timeout)
    import tensorflow as tf

    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=tf.distribute.experimental.CommunicationImplementation.RING))
        _all_reduce(strategy, [tf.zeros([1])])  # a barrier: every peer is up
    except (tf.errors.OpError, RuntimeError) as e:
        watchdog.stop()
        raise ClusterError(f"{watchdog.message()} ({first_line(e)})") from None
    watchdog.kick("training")
    _connected.update(cluster=cluster, strategy=strategy, watchdog=watchdog)
    return strategy


def _rendezvous(cluster: Cluster, timeout: float) -> None:
    """Waits, with a deadline, until every worker is up: each listens on its own port and
    contacts every peer's; it stops listening once it reached all peers and all reached it (so
    no peer can still need it), and the port is free for TensorFlow's server. (TensorFlow's own
    start-up waits without a bound and blocks Python meanwhile.)

    Raises:
        ClusterError: some peer did not answer within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    host, port = cluster.workers[cluster.index].rsplit(":", 1)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("" if host not in ("localhost", "127.0.0.1") else host, int(port)))
    except OSError as e:
        raise ClusterError(f"worker {cluster.index} cannot listen on {cluster.workers[cluster.index]}: {e}. "
                           "Give it a free port in --workers.") from None
    listener.listen(cluster.size)
    listener.settimeout(0.1)
    heard_from, reached = set(), set()
    peers = [i for i in range(cluster.size) if i != cluster.index]
    try:
        while len(heard_from) < len(peers) or len(reached) < len(peers):
            if time.monotonic() > deadline:
                missing = sorted(set(peers) - reached | set(peers) - heard_from)
                raise ClusterError(_no_answer(cluster, timeout, "connecting") + " Not answering: " +
                                   ", ".join(cluster.workers[i] for i in missing) + ".")
            try:
                conn, _ = listener.accept()
                with conn:  # the peer sends its index and closes first
                    conn.settimeout(5)
                    message = b"".join(iter(lambda: conn.recv(64), b""))
                    if message.startswith(b"vae-zoo "):
                        heard_from.add(int(message.split()[1]))
            except (TimeoutError, OSError, ValueError):
                pass
            for i in set(peers) - reached:
                peer_host, peer_port = cluster.workers[i].rsplit(":", 1)
                try:
                    with socket.create_connection((peer_host, int(peer_port)), timeout=0.5) as conn:
                        conn.sendall(f"vae-zoo {cluster.index}".encode())
                    reached.add(i)
                except OSError:
                    pass
    finally:
        listener.close()


def _all_reduce(strategy, tensors):
    """The sums over workers of `tensors` (one list per worker, same shapes)."""
    import tensorflow as tf

    def replica(*values):
        return tf.distribute.get_replica_context().all_reduce("sum", list(values))

    return [strategy.experimental_local_results(r)[0] for r in strategy.run(replica, args=tuple(tensors))]


def _broadcast_from_chief(strategy, cluster: Cluster, values: list[np.ndarray]) -> list[np.ndarray]:
    """The chief's `values` on every worker (float64 on the wire: integers up to 2**53 pass exactly)."""
    import tensorflow as tf

    mine = [np.asarray(v, np.float64) * (1.0 if cluster.is_chief else 0.0) for v in values]
    return [r.numpy() for r in _all_reduce(strategy, [tf.constant(v) for v in mine])]


def _sync_from_chief(strategy, cluster: Cluster, model: VAE, settings: dict, epoch: int) -> int:
    """Copies the chief's weights, optimizer state and epoch to every worker; checks that every
    worker was started with the chief's settings (all of them stop, with one message, if one was
    not). Returns the chief's epoch."""
    import tensorflow as tf

    variables = [*model.weights, *model.optimizer.variables]
    header = np.array([float(len(variables)), *map(float, settings.values())])
    chief = _broadcast_from_chief(strategy, cluster, [np.array([float(epoch), *header])])[0]
    differ = _all_reduce(strategy, [tf.constant((chief[1:] != header).astype(np.float64))])[0].numpy()
    if differ.any():
        fields = [name for name, d in zip(["model variables", *settings], differ) if d]
        raise InvalidArgumentError(f"The workers were started with different settings ({', '.join(fields)}). "
                                   "Start every worker with the same command and data.")
    for variable, value in zip(variables, _broadcast_from_chief(strategy, cluster, [v.numpy() for v in variables])):
        variable.assign(value.astype(variable.dtype))
    return int(chief[0])


def _make_step(strategy, cluster: Cluster, model: VAE, global_batch: int):
    """One AEVB step (the model's estimator, eq. 6 or 7, and parameter prior) on this worker's
    slice of the global batch; one all-reduce sums the gradients, the loss, ELBO and KL."""
    import tensorflow as tf

    first = cluster.index * (global_batch // cluster.size)
    variables = model.trainable_variables

    @tf.function(jit_compile=True)
    def local_gradients(x):
        bound, loss, grads = model.loss_and_gradients(x, model._train_noise_seed(), rows=(first, global_batch),
                                                      divisor=global_batch, prior_divisor=cluster.size)
        stats = tf.stack([loss, tf.reduce_sum(bound.elbo), tf.reduce_sum(bound.kl)]) / [1.0, global_batch,
                                                                                         global_batch]
        return [*grads, stats]

    @tf.function
    def step(x):
        def replica(x):
            return tf.distribute.get_replica_context().all_reduce("sum", local_gradients(x))

        reduced = [strategy.experimental_local_results(r)[0] for r in strategy.run(replica, args=(x,))]
        model.optimizer.apply_gradients(zip(reduced[:-1], variables))
        return reduced[-1]

    return step


def fit(model: VAE, x_train, recipe: Recipe, directory: str | os.PathLike, binarize: bool, cluster: Cluster,
        resume: bool = False, evaluate=None, evaluate_at=lambda epoch: True, report: bool = True,
        timeout: float = DEFAULT_TIMEOUT, identity: dict | None = None) -> tuple[VAE, dict | None]:
    """`training.fit_with_checkpoints` across the cluster's workers (call `connect` first).

    Every worker runs this with the same arguments; each reads its share of `x_train` (its slice
    of every batch of an array; its own files of `Shards`). The chief checkpoints into
    `directory` as `fit_with_checkpoints` does (every epoch, or every few for short epochs, at
    evaluations and at the end), evaluates and logs; a rerun with `resume` continues from its
    last checkpoint.

    Returns:
        The trained model, and on the chief the training state (None on other workers).
    """
    import tensorflow as tf

    strategy = connect(cluster, timeout)
    watchdog = _connected["watchdog"]
    if type(model) is not VAE:
        raise InvalidArgumentError(f"Only AEVB (a VAE) trains across workers; {type(model).__name__} trains in "
                                   "one process.")
    directory = Path(directory)
    batch = recipe.batch_size
    if isinstance(x_train, Shards):
        steps = x_train.steps_per_epoch(batch, cluster.shard)
    else:
        worker_batch_size(batch, cluster.shard)
        steps = len(x_train) // batch
    with exclusive_lock(directory, "training") if cluster.is_chief else contextlib.nullcontext():
        if cluster.is_chief:
            model, state = start_or_resume(model, recipe, directory, resume, steps, identity)
        else:  # its weights, optimizer state and epoch come from the chief
            model, state = compile_model(model, recipe, steps), {"epoch": 0}
        model.optimizer.build(model.trainable_variables)
        # The run's identity (data, split, architecture, source preset) as a 52-bit number, exact in float64.
        digest = hashlib.sha256(json.dumps(identity or {}, sort_keys=True, default=str).encode()).hexdigest()
        settings = {"batch_size": batch, "epochs": recipe.epochs, "seed": recipe.seed, "steps": steps,
                    "learning_rate": recipe.learning_rate, "workers": cluster.size,
                    "data, split and model (run identity)": int(digest[:13], 16)}
        epoch = _sync_from_chief(strategy, cluster, model, settings, state["epoch"])
        if epoch >= recipe.epochs:
            return model, state if cluster.is_chief else None
        kwargs = dict(first_epoch=epoch, epochs=recipe.epochs - epoch, worker=cluster.shard)
        ds = (x_train.train_dataset(batch, binarize, recipe.seed, **kwargs) if isinstance(x_train, Shards)
              else data_lib.train_dataset(x_train, batch, binarize, recipe.seed, **kwargs))
        step = _make_step(strategy, cluster, model, batch)
        callback = None
        if cluster.is_chief:
            callback = EpochCheckpoint(directory, state, evaluate, evaluate_at, report=report,
                                       save_every=max(1, CHECKPOINT_STEPS // steps))
            callback.set_model(model)
        try:
            _train(model, ds, step, steps, epoch, recipe.epochs, callback, watchdog, directory, cluster)
        except tf.errors.OpError as e:  # a peer died mid-step (TensorFlow noticed before the watchdog)
            raise ClusterError(f"worker {cluster.index} lost its peers during training "
                               f"({first_line(e, 160)}). "
                               f"{_kept(directory) if cluster.is_chief else ''} Restart every worker with --resume "
                               "to continue from the chief's last checkpoint.") from None
    return model, state if cluster.is_chief else None


def _train(model, ds, step, steps, epoch, epochs, callback, watchdog, directory, cluster):
    """The epochs from `epoch` on: steps, a finite-loss check, and the chief's per-epoch callback."""
    batches = iter(ds)
    for epoch in range(epoch, epochs):
        totals = np.zeros(3)
        for _ in range(steps):
            stats = step(next(batches)).numpy()
            watchdog.kick()
            if not np.isfinite(stats[0]):
                raise TrainingError(
                    f"Training diverged: the loss is {stats[0]} at step {int(model.optimizer.iterations)}. "
                    f"{_kept(directory) if cluster.is_chief else ''} Try a lower learning rate (--lr).")
            totals += stats
        if callback is not None:
            watchdog.kick("the chief evaluated and saved a checkpoint")
            callback.on_epoch_end(epoch, {"elbo": totals[1] / steps, "kl": totals[2] / steps})
        watchdog.kick("training")


def log_likelihood(model: VAE, x: np.ndarray, num_samples: int, seed: int, cluster: Cluster,
                   timeout: float = DEFAULT_TIMEOUT, verbose: bool = False) -> np.ndarray:
    """`model.log_likelihood` with its batches shared out across the cluster's workers: worker i
    computes batches i, i + W, ...; every worker gets every row's estimate, the one a single
    process computes (same seeds, same batches; the other workers add zeros)."""
    import tensorflow as tf

    strategy = connect(cluster, timeout)
    _connected["watchdog"].kick("estimating log p(x)")
    mine = np.zeros(len(x), np.float64)
    rows = shard_rows(len(x), 100, cluster.shard)
    mine[rows] = model.log_likelihood(x, num_samples=num_samples, seed=seed, batch_size=100, verbose=verbose,
                                      shard=cluster.shard)
    _connected["watchdog"].kick("waiting for the other workers' log p(x)")
    total = _all_reduce(strategy, [tf.constant(mine)])[0].numpy()
    _connected["watchdog"].kick("training")
    return total.astype(np.float32)


def done() -> None:
    """Ends this process's part in the cluster's collectives (stops the peer watchdog)."""
    if _connected:
        _connected["watchdog"].stop()
