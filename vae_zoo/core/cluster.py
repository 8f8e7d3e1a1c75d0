"""Which processes train together: the workers' addresses and this process's place among them,
from the command line's `--workers`/`--task-index` or from `TF_CONFIG`. No TensorFlow here: the
command line parses a cluster before it starts TensorFlow (`distributed` joins it)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket

from vae_zoo.core.errors import InvalidArgumentError


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The workers' host:port addresses and this process's index among them (0 is the chief)."""

    workers: tuple[str, ...]
    index: int

    @property
    def size(self) -> int:
        return len(self.workers)

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def shard(self) -> tuple[int, int]:
        return self.index, self.size

    def tf_config(self) -> str:
        return json.dumps({"cluster": {"worker": list(self.workers)}, "task": {"type": "worker", "index": self.index}})


def local_workers(n: int) -> list[str]:
    """n "127.0.0.1:PORT" addresses with ports free now, for a cluster of processes on this machine."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    addresses = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    for s in sockets:
        s.close()
    return addresses


def cluster_from(workers: list[str] | None = None, task_index: int | None = None,
                 environ: dict | None = None) -> Cluster | None:
    """The cluster given by flags (`--workers HOST:PORT ... --task-index I`) or by `TF_CONFIG` (as
    Kubernetes TFJob and Ray's TensorflowTrainer set it: jobs "chief" and/or "worker"); None
    when neither names more than one process.

    Raises:
        InvalidArgumentError: an incomplete or malformed cluster.
    """
    environ = os.environ if environ is None else environ
    if workers or task_index is not None:
        if not workers or task_index is None:
            raise InvalidArgumentError("--workers and --task-index go together: give every worker the same "
                                       "--workers HOST:PORT list and its own --task-index (0 is the chief).")
        addresses = tuple(workers)
        index = task_index
    elif environ.get("TF_CONFIG"):
        try:
            config = json.loads(environ["TF_CONFIG"])
            jobs = config["cluster"]
            for job in ("chief", "worker"):
                if not isinstance(jobs.get(job, []), list):
                    raise TypeError(f'cluster["{job}"] must be a list of "HOST:PORT" strings, not '
                                    f'{type(jobs[job]).__name__} {jobs[job]!r}')
            addresses = tuple(jobs.get("chief", [])) + tuple(jobs.get("worker", []))
            task = config["task"]
            index = int(task["index"]) + (len(jobs.get("chief", [])) if task["type"] == "worker" else 0)
            if task["type"] not in ("chief", "worker"):
                raise ValueError(f"task type {task['type']!r}")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise InvalidArgumentError(
                f"TF_CONFIG is not a cluster of chief/worker tasks ({e}). Expected e.g. "
                '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}'
            ) from None
    else:
        return None
    for address in addresses:
        host, _, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
        if not host or not (port.isdigit() and port.isascii() and 0 < int(port) < 65536):
            raise InvalidArgumentError(f"A worker address must be HOST:PORT. Received: {address!r}")
    if len(set(addresses)) != len(addresses):
        raise InvalidArgumentError(f"Worker addresses repeat: {', '.join(map(repr, addresses))}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(addresses):
        raise InvalidArgumentError(f"The task index must be in 0..{len(addresses) - 1} for {len(addresses)} "
                                   f"workers. Received: {index}")
    return Cluster(addresses, index) if len(addresses) > 1 else None
