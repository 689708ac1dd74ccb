"""The Dreamer agent (torch). ``import wmrobust.agent.config`` stays torch-free: the agent
classes load on first attribute access."""

from wmrobust.agent.config import AgentConfig, JacobianConfig, LatentErrorConfig, preset_overlays

__all__ = ["Agent", "AgentConfig", "JacobianConfig", "LatentErrorConfig", "preset_overlays"]


def __getattr__(name):
    if name == "Agent":
        from wmrobust.agent.agent import Agent

        return Agent
    raise AttributeError(f"module 'wmrobust.agent' has no attribute {name!r}")
