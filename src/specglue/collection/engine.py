"""How chunks of work run: in this process, or spread over Ray workers.

An engine maps a *worker* over chunks (a few images to extract, a batch of pairs to match).
The worker is built from a picklable factory, once per process, so each Ray worker loads the
network once. Chunks carry their inputs (decoded images, features) and results come back
to the driver, which writes each as its own part file (:mod:`specglue.storage.journal`):
Ray workers need no shared file system, and the driver is the only writer.

- :class:`LocalEngine`: the chunks one after the other in this process.
- :class:`RayEngine`: ``num_workers`` Ray actors on a local Ray (started here, ``num_cpus``
  = the workers' CPUs) or on an existing cluster (``address``, e.g. ``"auto"`` or
  ``"ray://head:10001"``); at most two chunks in flight per worker, so memory stays flat;
  results in completion order.

Every chunk's result is the same whichever engine computes it: matching and extraction work
one image / pair at a time on CPU (see :class:`specglue.LightGlue`'s ``padded_batch_devices``).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterable, Iterator, Optional

from ..optional import require

logger = logging.getLogger(__name__)

Worker = Callable[[Any], Any]
WorkerFactory = Callable[[], Worker]

ENGINES = ("local", "ray")
_END = object()


class LocalEngine:
    """Run every chunk in this process."""

    name = "local"

    def map(self, factory: WorkerFactory, chunks: Iterable[Any]) -> Iterator[Any]:
        worker = factory()
        for chunk in chunks:
            yield worker(chunk)

    def close(self) -> None:
        pass


class _RayWorker:
    """The Ray actor: builds the worker once, then runs chunks."""

    def __init__(self, factory: WorkerFactory, num_threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, num_threads))
        self.worker = factory()

    def run(self, chunk: Any) -> Any:
        return self.worker(chunk)


class RayEngine:
    """Run chunks on Ray actors.

    Args:
        address: an existing Ray cluster (``ray.init(address=...)``); None starts a local Ray
            with ``num_workers * cpus_per_worker`` CPUs.
        num_workers: actors to start (default: one per CPU of the local machine, or of the
            cluster).
        cpus_per_worker: CPUs (and torch threads) per actor (default 1).
    """

    name = "ray"

    def __init__(self, address: Optional[str] = None, num_workers: Optional[int] = None,
                 cpus_per_worker: int = 1) -> None:
        self.ray = require("ray", "ray", "the Ray engine (--engine ray)")
        if num_workers is not None and int(num_workers) < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        if int(cpus_per_worker) < 1:
            raise ValueError(f"cpus_per_worker must be >= 1, got {cpus_per_worker}")
        self.cpus_per_worker = int(cpus_per_worker)
        self._started = False
        if not self.ray.is_initialized():
            if address is None:
                workers = int(num_workers or os.cpu_count() or 1)
                self.ray.init(num_cpus=workers * self.cpus_per_worker, include_dashboard=False,
                              log_to_driver=False, logging_level=logging.WARNING)
            else:
                try:
                    self.ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
                except Exception as err:  # Ray raises ConnectionError, RuntimeError, ...
                    raise ValueError(f"cannot connect to the Ray cluster at {address!r}: {err}") from err
            self._started = True
        available = int(self.ray.cluster_resources().get("CPU", 1))
        self.num_workers = int(num_workers or max(1, available // self.cpus_per_worker))
        logger.info("Ray engine: %d workers x %d CPUs (cluster: %d CPUs)", self.num_workers,
                    self.cpus_per_worker, available)

    def map(self, factory: WorkerFactory, chunks: Iterable[Any]) -> Iterator[Any]:
        actor_class = self.ray.remote(num_cpus=self.cpus_per_worker)(_RayWorker)
        actors = [actor_class.remote(factory, self.cpus_per_worker) for _ in range(self.num_workers)]
        pending = {}  # object ref -> actor
        idle = list(actors) * 2  # two chunks in flight per actor
        chunk_iter = iter(chunks)
        try:
            while True:
                while idle:
                    chunk = next(chunk_iter, _END)
                    if chunk is _END:
                        break
                    actor = idle.pop(0)
                    pending[actor.run.remote(chunk)] = actor
                if not pending:
                    return
                (done,), _ = self.ray.wait(list(pending), num_returns=1)
                idle.append(pending.pop(done))
                yield self.ray.get(done)
        finally:
            for actor in actors:
                self.ray.kill(actor)

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False


def make_engine(name: str = "local", address: Optional[str] = None,
                num_workers: Optional[int] = None) -> Any:
    """The engine called ``name`` (``"local"`` or ``"ray"``)."""
    if name == "local":
        if address is not None or num_workers is not None:
            raise ValueError("--address and --workers need --engine ray")
        return LocalEngine()
    if name == "ray":
        return RayEngine(address=address, num_workers=num_workers)
    raise ValueError(f"engine must be one of {ENGINES}, got {name!r}")


__all__ = ["ENGINES", "LocalEngine", "RayEngine", "make_engine"]
