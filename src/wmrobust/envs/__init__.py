"""DeepMind Control environments: `make_env`, `BatchEnv`, `EnvConfig`.

Importing this package loads only the config; dm_control loads on first use of
`make_env`/`DMCEnv`/`BatchEnv`, so config resolution stays cheap.
"""

from wmrobust.envs.config import EnvConfig

_LAZY = {
    "make_env": "wmrobust.envs.dmc",
    "DMCEnv": "wmrobust.envs.dmc",
    "split_task": "wmrobust.envs.dmc",
    "vector_spread": "wmrobust.envs.dmc",
    "BatchEnv": "wmrobust.envs.batch",
    "EnvWorkerError": "wmrobust.envs.batch",
}

__all__ = ["EnvConfig"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'wmrobust.envs' has no attribute {name!r}")
