"""Optional torch.compile of the agent's hot loop (``train.compile``).

An update runs the RSSM step in Python loops: ``obs_step`` once per replayed time step
(``RSSM.observe``) and ``img_step`` once per imagined step, each a few dozen small
tensor ops whose per-op overhead is a large share of a small model's update on a CPU.
Compiling the two steps (inductor) fuses each into a handful of kernels, forward and
backward. The loops stay in Python, so the graphs are small and compile in a minute or
two; whole-loss graphs would unroll the loops and break at ``frozen()`` for little more.

Inductor's own random numbers differ from eager's; ``fallback_random`` keeps torch's
eager generators, so a compiled update draws the same noise as an eager one and the two
agree to float tolerance (tests/test_agent.py).
"""

from __future__ import annotations

import warnings

import torch


def compiler_available() -> str | None:
    """None if torch.compile works here (a C++ compiler and the inductor backend); else why not."""
    try:
        probe = torch.compile(lambda x: torch.sigmoid(x) * 2.0, dynamic=False)
        probe(torch.ones(3))
    except Exception as err:  # a missing compiler surfaces as one of many error types
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    return None


def compile_steps(rssm: torch.nn.Module) -> bool:
    """Compile ``rssm.obs_step`` and ``rssm.img_step`` in place; True if compiled.

    Where no compiler works, warns once in one line and leaves the model eager."""
    problem = compiler_available()
    if problem is not None:
        warnings.warn(f"train.compile: torch.compile is unavailable here ({problem}); training eagerly",
                      RuntimeWarning, stacklevel=2)
        return False
    import torch._inductor.config as inductor_config

    inductor_config.fallback_random = True
    rssm.obs_step = torch.compile(rssm.obs_step, dynamic=False)
    rssm.img_step = torch.compile(rssm.img_step, dynamic=False)
    return True
