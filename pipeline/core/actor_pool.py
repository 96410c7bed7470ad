"""A small pool of Ray actors shared by encode and generate: start Ray, deal numbered tasks, retry.

    start_ray(workers=2, ray_address=None)       # a private local Ray, or join a cluster (code shipped)
    for number, result in run_pool(ActorSpec(EncodeWorker, (ecfg, seed)), "encode", tasks, workers=2): ...

Each actor is built once (it loads its model in `__init__`) and then runs task after task,
`in_flight` at a time so it never waits for the driver. Tasks are numbered in the order the
iterator gives them and results come back to the driver with their number, in that order
when `ordered`, else as they arrive. An actor that dies (its process killed, its machine
gone) is replaced by a new one and its unfinished tasks go back to the front of the queue;
a task that fails `attempts` times stops the pool with PoolError, after every result that
came back was handed over (when `ordered`, those before the first missing one). What the
driver receives therefore depends only on the tasks, never on which actor ran them or how
often one died. The driver can work as one more worker (`in_driver`): between dispatches it runs
tasks itself, so a pool on one machine needs one actor fewer (encode does this on a local Ray).
Large read-only inputs (a model's files) travel through Ray's object store
(`ship_files`, `unpack_files`).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from pipeline.core.errors import ConfigError, StageError

# Tries per task before the pool gives up on it (a dying actor costs each of its tasks one try).
ATTEMPTS = 3
ROOT = str(Path(__file__).resolve().parents[2])


class PoolError(StageError):
    """A task failed `attempts` times; the message names it and gives the last error's line."""


@dataclass(frozen=True)
class ActorSpec:
    """How to build one actor: its class, constructor arguments and Ray resources per actor."""

    cls: type
    args: tuple = ()
    num_cpus: float = 1
    num_gpus: float = 0
    kwargs: dict = field(default_factory=dict)


def start_ray(workers: int, ray_address: str | None, gpus: float = 0, section: str = "encode",
              actors: int | None = None) -> None:
    """Connect to `ray_address` when set, else start a private local Ray sized to `workers` (once per process).

    gpus: GPUs each worker needs; actors: the Ray actors the job will run (default `workers`; fewer
    when the driver works too). Raises ConfigError (one line, naming `section`'s keys) when the
    cluster cannot be reached or has too few CPUs or GPUs for the actors.
    """
    import ray

    if not ray.is_initialized():
        _init_ray(workers, ray_address, section)
    actors = workers if actors is None else actors
    asked = f"{workers} workers" + (f" ({actors} Ray actors)" if actors != workers else "")
    resources = ray.cluster_resources()
    if resources.get("CPU", 0) < actors:
        raise ConfigError(f"{section}.workers: {asked} asked for but the Ray cluster has "
                          f"{resources.get('CPU', 0):g} CPUs")
    if gpus and resources.get("GPU", 0) < actors * gpus:
        raise ConfigError(f"{section}.gpus: {asked} x {gpus:g} GPUs asked for but the Ray cluster has "
                          f"{resources.get('GPU', 0):g} GPUs")


def _init_ray(workers: int, ray_address: str | None, section: str) -> None:
    import ray

    if ray_address:
        # A remote cluster needs our code shipped to it; a local one imports it from this checkout.
        try:
            ray.init(address=ray_address, log_to_driver=False,
                     runtime_env={"working_dir": ROOT, "excludes": [".venv", "data", ".git"]})
        except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"{section}.ray_address: cannot connect to the Ray cluster at {ray_address} ({reason}); check the "
                "address, and for a cluster with token authentication set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN "
                "(or RAY_AUTH_TOKEN_PATH) to its token in the environment; ray_address: null runs a local Ray"
            ) from None
    else:
        # address="local" always starts a new Ray: without it ray.init joins a cluster found through
        # RAY_ADDRESS or a (possibly stale) ray_current_cluster file, and then refuses num_cpus.
        # GPUs are left to Ray's own detection. Ray runs its workers at nice 15 by default, so on a
        # shared machine the actors yield to every other process, the driver included (measured: 534
        # rows/s against 981 for two plain processes); a private Ray's workers run at the driver's priority.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": ROOT}})


def ship_files(paths: Iterable[Path], written: dict[str, bytes] | None = None) -> Any:
    """The files at `paths` (by base name) and `written` ({name: bytes}), put once into Ray's object store.

    Returns the ObjectRef of (digest, {name: bytes}). An actor given it as a top-level argument
    receives that pair (Ray moves it once per machine); `unpack_files` writes it out there.
    """
    import ray

    files = {**{Path(p).name: Path(p).read_bytes() for p in paths}, **(written or {})}
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return ray.put((digest.hexdigest()[:16], files))


def unpack_files(shipped: tuple[str, dict[str, bytes]], name: str) -> Path:
    """The folder `<tmp>/keyword-titles-files/<digest>/<name>` holding the shipped files; returns it.

    One copy per machine and content: every actor there reuses it (a later job with the same
    files too), so restarted actors do not fill the disk. Written to a scratch folder and renamed,
    so an actor killed while writing never leaves a partial copy for the next.
    """
    digest, files = shipped
    home = Path(tempfile.gettempdir()) / "keyword-titles-files" / digest
    folder = home / name
    if not folder.is_dir():
        home.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=home))
        for file_name, data in files.items():
            (scratch / file_name).write_bytes(data)
        try:
            scratch.rename(folder)
        except OSError:  # another actor on this machine got there first
            shutil.rmtree(scratch, ignore_errors=True)
    return folder


def error_line(exc: BaseException) -> str:
    """The last non-empty line of an error's text (Ray's carry the remote traceback before it)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def run_pool(spec: ActorSpec, method: str, tasks: Iterable[tuple], workers: int, in_flight: int = 2,
             ordered: bool = False, attempts: int = ATTEMPTS,
             describe: Callable[[int], str] = "batch {}".format,
             in_driver: Callable[[], Callable[..., Any]] | None = None) -> Iterator[tuple[int, Any]]:
    """Run `actor.method(*args)` for every args tuple of `tasks` on `workers` actors built from `spec`.

    Ray must be started (start_ray) when `workers` > 0. Yields (number, result): number is the
    task's 0-based position in `tasks`; in that order when `ordered`. Raises PoolError naming the
    task (`describe(number)`) when one fails `attempts` times. Every actor is killed when the
    generator ends or is closed.

    in_driver: the driver works too. It is called once, after the actors were asked to start and
    given their first tasks (so the driver's own set-up, a model load, overlaps theirs), and returns
    the function the driver then runs on the next task whenever no actor's result is waiting.
    A task failing there counts as one of its `attempts`, like one failing on an actor. With
    `in_driver`, `workers` may be 0: every task runs in the driver and Ray is not used.
    """
    if workers:
        import ray

        remote_cls = ray.remote(num_cpus=spec.num_cpus, num_gpus=spec.num_gpus)(spec.cls)
    actors = [remote_cls.remote(*spec.args, **spec.kwargs) for _ in range(workers)]
    lives = [0] * workers  # bumped when a slot's actor is replaced
    numbered = enumerate(tasks)
    retry: deque = deque()
    failures: Counter = Counter()
    pending: dict = {}
    held: dict[int, Any] = {}  # results waiting for an earlier one (ordered)
    next_no = 0

    def take() -> tuple[int, tuple] | None:
        return retry.popleft() if retry else next(numbered, None)

    def submit(slot: int) -> None:
        item = take()
        if item is not None:
            pending[getattr(actors[slot], method).remote(*item[1])] = (item, slot, lives[slot])

    def failed(item: tuple[int, tuple], exc: BaseException) -> None:
        failures[item[0]] += 1
        if failures[item[0]] >= attempts:
            raise PoolError(f"{describe(item[0])} failed {failures[item[0]]} times; last error: "
                            f"{error_line(exc)}") from None
        retry.appendleft(item)

    def deliver(number: int, result: Any) -> Iterator[tuple[int, Any]]:
        nonlocal next_no
        if not ordered:
            yield number, result
            return
        held[number] = result
        while next_no in held:
            yield next_no, held.pop(next_no)
            next_no += 1

    try:
        for _ in range(in_flight):
            for slot in range(workers):
                submit(slot)
        local = in_driver() if in_driver is not None else None
        mine = None  # the task the driver runs next
        while True:
            if local is not None and mine is None:
                mine = take()
            if not pending and mine is None:
                break
            if pending:
                # Results that are back first (resubmitting keeps the actors busy); wait only when the
                # driver has nothing of its own to run.
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=None if mine is None else 0)
                if ready:
                    item, slot, life = pending.pop(ready[0])
                    try:
                        result = ray.get(ready[0])
                    except ray.exceptions.RayError as exc:
                        failed(item, exc)
                        if isinstance(exc, ray.exceptions.RayActorError) and life == lives[slot]:
                            # The actor is gone: a new one takes its slot; its other tasks fail and come back too.
                            ray.kill(actors[slot])
                            actors[slot] = remote_cls.remote(*spec.args, **spec.kwargs)
                            lives[slot] += 1
                        submit(slot)
                        continue
                    submit(slot)  # before handing the result over, so the actor is never idle meanwhile
                    yield from deliver(item[0], result)
                    continue
            item, mine = mine, None
            try:
                result = local(*item[1])
            except Exception as exc:  # noqa: BLE001 - counted and retried like an actor's failure
                failed(item, exc)
                continue
            yield from deliver(item[0], result)
    finally:
        for actor in actors:
            ray.kill(actor)
