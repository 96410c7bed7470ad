"""The Ray actor pool encode and generate share (pipeline.core.actor_pool), on a real local Ray with trivial actors:
results in order, an actor whose process dies mid-task replaced, a task failing every time stopping the pool."""
import os
import signal
from pathlib import Path

import pytest

from pipeline.core.actor_pool import ActorSpec, PoolError, run_pool, ship_files, unpack_files


class Doubler:
    """Doubles numbers; `fail` raises every time; `die` kills its own process the first time (a marker file
    in `scratch` remembers it), as `kill -9` from outside would."""

    def __init__(self, scratch: str):
        self.scratch = Path(scratch)

    def run(self, x):
        if x == "fail":
            raise ValueError("this task always fails")
        if x == "die":
            marker = self.scratch / "died"
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            return "survived"
        return 2 * x


def test_results_come_back_numbered_in_task_order(ray_session, tmp_path):
    results = list(run_pool(ActorSpec(Doubler, (str(tmp_path),)), "run", [(i,) for i in range(20)], workers=2,
                            ordered=True))
    assert results == [(i, 2 * i) for i in range(20)]
    unordered = sorted(run_pool(ActorSpec(Doubler, (str(tmp_path),)), "run", [(i,) for i in range(6)], workers=2))
    assert unordered == [(i, 2 * i) for i in range(6)]


def test_an_actor_that_dies_is_replaced_and_its_task_runs_again(ray_session, tmp_path):
    tasks = [(1,), (2,), ("die",), (3,), (4,), (5,)]
    results = list(run_pool(ActorSpec(Doubler, (str(tmp_path),)), "run", tasks, workers=2, ordered=True))
    assert (tmp_path / "died").exists()
    assert results == [(0, 2), (1, 4), (2, "survived"), (3, 6), (4, 8), (5, 10)]


def test_a_task_failing_every_time_stops_the_pool_naming_it_after_the_results_before_it(ray_session, tmp_path):
    got = []
    with pytest.raises(PoolError, match=r"task 3 failed 3 times; last error: .*this task always fails"):
        for item in run_pool(ActorSpec(Doubler, (str(tmp_path),)), "run", [(0,), (1,), (2,), ("fail",), (4,)],
                             workers=1, ordered=True, describe="task {}".format):
            got.append(item)
    assert got == [(0, 0), (1, 2), (2, 4)]


def test_shipped_files_are_unpacked_once_per_content(ray_session, tmp_path):
    import ray

    (tmp_path / "a.bin").write_bytes(b"\x00weights")
    shipped = ray.get(ship_files([tmp_path / "a.bin"], {"marker": b"m"}))
    first, second = unpack_files(shipped, "run1"), unpack_files(shipped, "run1")
    assert first == second and first.name == "run1"
    assert {p.name: p.read_bytes() for p in first.iterdir()} == {"a.bin": b"\x00weights", "marker": b"m"}
    (tmp_path / "a.bin").write_bytes(b"other")
    assert unpack_files(ray.get(ship_files([tmp_path / "a.bin"])), "run1") != first


class InDriver:
    """The driver's own worker for `in_driver`: doubles as Doubler does and notes which tasks it ran."""

    def __init__(self, ran: list):
        self.ran = ran

    def run(self, x):
        if x == "fail":
            raise ValueError("this task always fails")
        self.ran.append(x)
        return 2 * x


def test_the_driver_works_between_dispatches_and_results_stay_in_task_order(ray_session, tmp_path):
    ran = []
    tasks = [(i,) for i in range(40)]
    results = list(run_pool(ActorSpec(Doubler, (str(tmp_path),)), "run", tasks, workers=1, ordered=True,
                            in_driver=lambda: InDriver(ran).run))
    assert results == [(i, 2 * i) for i in range(40)]
    assert 0 < len(ran) < 40  # the driver and the actor both worked


def test_with_the_driver_working_an_actor_that_dies_is_still_replaced(ray_session, tmp_path):
    # The actor gets the first tasks (dispatched before the driver starts), "die" among them.
    tasks = [(1,), ("die",), (3,), (4,), (5,), (6,)]
    ran = []
    results = list(run_pool(ActorSpec(Doubler, (str(tmp_path),)), "run", tasks, workers=1, ordered=True,
                            in_flight=2, in_driver=lambda: InDriver(ran).run))
    assert (tmp_path / "died").exists()
    assert results == [(0, 2), (1, "survived"), (2, 6), (3, 8), (4, 10), (5, 12)]


def test_without_actors_the_driver_runs_every_task_and_a_failing_one_stops_the_pool(tmp_path):
    # No Ray at all: workers=0 with the driver working.
    ran, got = [], []
    with pytest.raises(PoolError, match=r"task 2 failed 3 times; last error: this task always fails"):
        for item in run_pool(ActorSpec(Doubler, (str(tmp_path),)), "run", [(0,), (1,), ("fail",), (3,)], workers=0,
                             ordered=True, describe="task {}".format, in_driver=lambda: InDriver(ran).run):
            got.append(item)
    assert got == [(0, 0), (1, 2)] and ran == [0, 1]
