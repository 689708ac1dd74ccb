"""Several envs stepped together, in worker processes or in-process."""

from __future__ import annotations

import multiprocessing
import pickle
import traceback
from typing import Callable

import numpy as np


class EnvWorkerError(RuntimeError):
    """An env raised inside a worker process; the message holds the worker's traceback."""


def _worker(conn, fns):
    try:
        envs = [fn() for fn in fns]
        conn.send(("ok", (envs[0].obs_space, envs[0].act_dim)))
        while True:
            command, payload = conn.recv()
            if command == "reset":
                conn.send(("ok", [env.reset() for env in envs]))
            elif command == "step":
                conn.send(("ok", [env.step(a) for env, a in zip(envs, payload)]))
            elif command == "close":
                for env in envs:
                    env.close()
                conn.send(("ok", None))
                return
    except Exception:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class BatchEnv:
    """N envs built by `fns`, spread over `processes` worker processes.

    processes=1 runs the envs in this process. Workers use the 'spawn' start method
    (EGL rendering contexts do not survive fork), so `fns` must be picklable, e.g.
    ``functools.partial(make_env, cfg, seed)``. An exception in a worker closes the
    batch and is raised here as EnvWorkerError with the worker's traceback.
    """

    def __init__(self, fns: list[Callable[[], object]], processes: int = 1):
        if not fns:
            raise ValueError("BatchEnv needs at least one env")
        if not 1 <= processes <= len(fns):
            raise ValueError(f"processes={processes} must be between 1 and the number of envs ({len(fns)})")
        self.num_envs = len(fns)
        self._envs, self._workers = [], []
        if processes == 1:
            self._envs = [fn() for fn in fns]
            self.obs_space, self.act_dim = self._envs[0].obs_space, self._envs[0].act_dim
            return
        context = multiprocessing.get_context("spawn")
        # Contiguous chunks keep results in the order of `fns`.
        self._chunks = [list(c) for c in np.array_split(np.arange(len(fns)), processes)]
        for index, chunk in enumerate(self._chunks):
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, [fns[i] for i in chunk]), daemon=True)
            try:
                process.start()
            except (pickle.PicklingError, AttributeError, TypeError) as error:
                self.close()
                raise TypeError(
                    f"BatchEnv: env constructor {index} cannot be sent to a worker process ({error}); "
                    "use a picklable callable such as functools.partial(make_env, cfg, seed)"
                ) from None
            child.close()
            self._workers.append((process, parent))
        self.obs_space, self.act_dim = self._gather()[0]

    def _gather(self) -> list:
        results = []
        for index, (process, conn) in enumerate(self._workers):
            try:
                status, payload = conn.recv()
            except EOFError:
                process.join(timeout=1)
                self.close()
                raise EnvWorkerError(f"env worker {index} died (exit code {process.exitcode})") from None
            if status == "error":
                self.close()
                raise EnvWorkerError(f"env worker {index} raised:\n{payload}")
            results.append(payload)
        return results

    def reset(self) -> list[dict]:
        if not self._workers:
            return [env.reset() for env in self._envs]
        for _, conn in self._workers:
            conn.send(("reset", None))
        return [obs for chunk in self._gather() for obs in chunk]

    def step(self, actions) -> list[tuple[dict, float, bool]]:
        if len(actions) != self.num_envs:
            raise ValueError(f"{len(actions)} actions for {self.num_envs} envs")
        if not self._workers:
            return [env.step(a) for env, a in zip(self._envs, actions)]
        for (_, conn), chunk in zip(self._workers, self._chunks):
            conn.send(("step", [actions[i] for i in chunk]))
        return [result for chunk in self._gather() for result in chunk]

    def close(self) -> None:
        for env in self._envs:
            env.close()
        self._envs = []
        workers, self._workers = self._workers, []
        for process, conn in workers:
            if process.is_alive():
                try:
                    conn.send(("close", None))
                    conn.recv()
                except (BrokenPipeError, EOFError, OSError):
                    pass
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()
            conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
