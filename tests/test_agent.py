"""The Dreamer agent: shapes, finite losses, latent error statistics, Jacobian estimators."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from wmrobust.agent import Agent
from wmrobust.train import tune_cpu
from wmrobust.agent.behavior import lambda_returns
from wmrobust.agent.compiled import compiler_available
from wmrobust.agent.config import LatentErrorConfig
from wmrobust.agent.jacobian import frobenius_sq, spectral_norm
from wmrobust.agent.latent_error import apply_latent_error
from wmrobust.agent.nets import BoundedNormal, TruncNormal, TwoHot, UnitGaussian, symexp
from wmrobust.agent.replay import Replay
from wmrobust.agent.world_model import DecayedAdam
from wmrobust.config import resolve

torch.set_num_threads(1)
SPACES = {"vector": {"vector": ((5,), np.float32)}, "image": {"image": ((64, 64, 3), np.uint8)}}


def make_batch(key: str, b: int = 3, t: int = 12, act_dim: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    batch = {"action": rng.uniform(-1, 1, (b, t, act_dim)).astype(np.float32),
             "reward": rng.normal(size=(b, t)).astype(np.float32),
             "is_first": np.zeros((b, t), bool), "is_terminal": np.zeros((b, t), bool)}
    batch["is_first"][:, 0] = True
    batch["action"][:, 0] = 0
    batch["reward"][:, 0] = 0
    batch[key] = (rng.integers(0, 256, (b, t, 64, 64, 3), dtype=np.uint8) if key == "image"
                  else rng.normal(size=(b, t, 5)).astype(np.float32))
    return batch


def tiny_agent(key="vector", seed=0, **agent):
    torch.manual_seed(seed)
    cfg = resolve({"agent": {"size": "tiny", **agent}})
    return Agent(SPACES[key], 2, cfg.agent, "cpu")


@pytest.mark.parametrize("key", ["vector", "image"])
@pytest.mark.parametrize("preset", ["dreamerv2", "dreamerv3"])
def test_update_losses_finite_and_act_shapes(key, preset):
    agent = tiny_agent(key, preset=preset, latent_error={"kind": "nonzero_drift"}, jacobian={"weight": 0.01},
                       transition_weight_decay=1e-4, aug_noise_std=0.1 if key == "image" else 0.0)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    batch = make_batch(key)
    metrics = agent.update(batch)
    for name in ("loss_model", "loss_obs", "loss_reward", "loss_dyn", "loss_rep", "loss_jacobian",
                 "loss_actor", "loss_critic", "jacobian_fro2"):
        assert np.isfinite(metrics[name]), name
    assert ("loss_cont" in metrics) == (preset == "dreamerv3")
    changed = [k for k, v in agent.state_dict().items() if not torch.equal(before[k], v)]
    assert any(k.startswith("world_model.") for k in changed)
    assert any(k.startswith("behavior.actor.") for k in changed)
    assert any(k.startswith("behavior.critic.") for k in changed)

    state = agent.initial_state(3)
    obs = {key: batch[key][:, 0], "is_first": np.ones(3, bool)}
    for mode in ("explore", "eval"):
        action, state = agent.act(obs, state, mode)
        assert action.shape == (3, 2) and action.dtype == np.float32 and np.abs(action).max() <= 1


def test_tune_cpu_flushes_denormals():
    torch.set_flush_denormal(False)  # another test's Trainer may have flushed already
    subnormal = torch.tensor([1e-40], dtype=torch.float32)
    assert (subnormal * 1.0).item() != 0.0
    tune_cpu()
    assert (subnormal * 1.0).item() == 0.0


@pytest.mark.parametrize("preset", ["dreamerv2", "dreamerv3"])
def test_glorot_initialisation(preset):
    """Every linear/conv weight starts with Glorot variance 2 / (fan_in + fan_out) and zero
    bias; DreamerV3's reward and critic output layers start at zero; the slow critic is a copy."""
    torch.manual_seed(0)
    cfg = resolve({"agent": {"preset": preset, "size": "small"}}).agent
    agent = Agent(SPACES["image"], 2, cfg, "cpu")
    heads = {agent.world_model.reward.net[-1], agent.behavior.critic.net[-1], agent.behavior.slow_critic.net[-1]}
    layers = [m for m in agent.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert len(layers) > 20
    for layer in layers:
        if layer.bias is not None:
            assert not layer.bias.any()
        if cfg.twohot and layer in heads:
            assert not layer.weight.any()
            continue
        w = layer.weight
        receptive = w[0, 0].numel()
        fans = (w.shape[0] * receptive, w.shape[1] * receptive)
        if w.numel() >= 2000:  # enough entries for a variance check within 10%
            assert w.var().item() == pytest.approx(2 / sum(fans), rel=0.1), layer
    for slow, fast in zip(agent.behavior.slow_critic.parameters(), agent.behavior.critic.parameters()):
        assert torch.equal(slow, fast)


def test_open_loop_and_jacobian_norm_shapes():
    agent = tiny_agent("image")
    out = agent.world_model.open_loop(make_batch("image", b=2, t=12), context=4, horizon=6)
    feat = agent.world_model.feat_dim
    expected = {"obs_pred": (2, 6, 64, 64, 3), "obs_true": (2, 6, 64, 64, 3), "reward_pred": (2, 6),
                "reward_true": (2, 6), "latent_pred": (2, 6, feat), "latent_post": (2, 6, feat)}
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    assert 0 <= out["obs_pred"].min() and out["obs_pred"].max() <= 1
    assert 0 <= out["obs_true"].min() and out["obs_true"].max() <= 1
    with pytest.raises(ValueError, match="shorter than context"):
        agent.world_model.open_loop(make_batch("image", b=2, t=8), context=4, horizon=6)
    norms = agent.world_model.jacobian_norms(make_batch("image", b=2, t=6))
    assert 0 < norms["spectral"] <= norms["frobenius"] * 1.001


def test_save_load_roundtrip_weights_only(tmp_path):
    agent = tiny_agent("vector", preset="dreamerv3")
    agent.update(make_batch("vector"))
    agent.save(tmp_path / "model.pt")
    torch.load(tmp_path / "model.pt", weights_only=True)
    loaded = Agent.load(tmp_path / "model.pt", SPACES["vector"], 2, agent.cfg, "cpu")
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in agent.state_dict().items())
    obs = {"vector": np.ones((1, 5), np.float32), "is_first": np.ones(1, bool)}
    torch.manual_seed(1)
    a, _ = agent.act(obs, agent.initial_state(1), "eval")
    torch.manual_seed(1)
    b, _ = loaded.act(obs, loaded.initial_state(1), "eval")
    np.testing.assert_array_equal(a, b)
    other = resolve({"agent": {"size": "small"}}).agent
    with pytest.raises(ValueError, match="model.pt"):
        Agent.load(tmp_path / "model.pt", SPACES["vector"], 2, other, "cpu")


def test_zero_drift_mean_zero_and_configured_variance():
    torch.manual_seed(0)
    x = torch.zeros(2000, 1024)
    noise = apply_latent_error(x, LatentErrorConfig(kind="zero_drift", sigma2=5.0))
    assert abs(noise.mean().item()) < 0.01
    assert noise.var().item() == pytest.approx(5.0, rel=0.01)
    assert torch.equal(apply_latent_error(x, LatentErrorConfig(kind="none", sigma2=5.0)), x)


def test_nonzero_drift_mu_and_sigma2_in_configured_ranges():
    torch.manual_seed(0)
    cfg = LatentErrorConfig(kind="nonzero_drift", mu_range=(1.0, 3.0), sigma2_range=(0.5, 2.0))
    noise = apply_latent_error(torch.zeros(400, 20000), cfg)
    mu, sigma2 = noise.mean(1), noise.var(1)  # per element of the batch, one draw each
    assert mu.min() > 1.0 - 0.05 and mu.max() < 3.0 + 0.05
    assert sigma2.min() > 0.5 - 0.08 and sigma2.max() < 2.0 + 0.08
    # Drawn uniformly: they fill the ranges, with the uniform's mean.
    assert mu.min() < 1.1 and mu.max() > 2.9 and mu.mean().item() == pytest.approx(2.0, abs=0.1)
    assert sigma2.min() < 0.6 and sigma2.max() > 1.9 and sigma2.mean().item() == pytest.approx(1.25, abs=0.1)
    # Resampled on every call (time step).
    assert not torch.equal(apply_latent_error(torch.zeros(4, 8), cfg), apply_latent_error(torch.zeros(4, 8), cfg))


def test_latent_error_reaches_the_stochastic_state_in_act():
    agent = tiny_agent("vector")
    obs = {"vector": np.ones((2, 5), np.float32), "is_first": np.ones(2, bool)}
    _, clean = agent.act(obs, agent.initial_state(2), "eval")
    _, noisy = agent.act(obs, agent.initial_state(2), "eval", LatentErrorConfig(kind="zero_drift", sigma2=4.0))
    torch.testing.assert_close(clean["stoch"], clean["stoch"].round())  # one-hot without error
    assert noisy["stoch"].std() > 1.0


def small_map(seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(7, 16), torch.nn.Tanh(), torch.nn.Linear(16, 5))
    x = torch.randn(6, 7, requires_grad=True)
    exact = torch.stack([torch.func.jacrev(net)(row).pow(2).sum() for row in x.detach()])
    return net, x, exact


def test_exact_estimator_equals_jacobian_frobenius():
    net, x, exact = small_map()
    torch.testing.assert_close(frobenius_sq(net(x), [x], "exact"), exact)


def test_projection_estimator_is_unbiased():
    net, x, exact = small_map()
    torch.manual_seed(0)
    estimate = frobenius_sq(net(x), [x], "projection", probes=20000)
    torch.testing.assert_close(estimate, exact, rtol=0.05, atol=0)


def test_jacobian_penalty_is_trainable_and_only_trains_the_transition():
    agent = tiny_agent("vector", jacobian={"weight": 1.0})
    wm = agent.world_model
    data = wm.to_tensors(make_batch("vector"), "cpu")
    _, post, _ = wm.loss(data)
    penalty = wm.transition_frobenius_sq(post, data["action"], "projection", 1, create_graph=True).mean()
    grads = torch.autograd.grad(penalty, list(wm.parameters()), allow_unused=True)
    named = dict(zip([n for n, _ in wm.named_parameters()], grads))
    assert all(g is not None and g.abs().sum() > 0 for n, g in named.items() if n.startswith("rssm.gru."))
    assert all(g is None for n, g in named.items() if n.startswith(("encoder.", "decoder.", "reward.")))


def test_spectral_norm_power_iteration():
    torch.manual_seed(0)
    matrix = torch.randn(5, 7)
    sigma = spectral_norm(lambda x: x @ matrix.T, torch.randn(3, 7), iters=100)
    torch.testing.assert_close(sigma, torch.linalg.matrix_norm(matrix, ord=2).expand(3), rtol=1e-4, atol=0)


def test_lambda_returns_by_hand():
    reward = torch.tensor([[1.0], [2.0]])
    value = torch.tensor([[0.0], [10.0], [20.0]])
    disc = torch.tensor([[0.5], [0.5]])
    lam = 0.5
    r1 = 2.0 + 0.5 * 20.0  # R_1 = r_2 + d_2 v_2
    r0 = 1.0 + 0.5 * ((1 - lam) * 10.0 + lam * r1)
    torch.testing.assert_close(lambda_returns(reward, value, disc, lam), torch.tensor([[r0], [r1]]))


def test_twohot_and_truncated_normal():
    logits = torch.full((1, 255), -30.0)
    logits[0, 200] = 0
    dist = TwoHot(logits)
    assert dist.mean.item() == pytest.approx(symexp(dist.bins[200]).item(), rel=1e-5)
    assert dist.log_prob(dist.mean).item() == pytest.approx(0.0, abs=0.01)
    torch.manual_seed(0)
    trunc = TruncNormal(torch.full((20000, 1), 0.7), torch.full((20000, 1), 0.8))
    x = trunc.rsample()
    assert x.abs().max() < 1
    # The entropy is the expected negative log-density.
    assert trunc.entropy().mean().item() == pytest.approx(-trunc.log_prob(x).mean().item(), abs=0.02)


def test_truncated_normal_matches_numerical_integration():
    """Density, entropy and mean of TruncNormal against a fine grid over [-1, 1], including a
    mean pinned at the bound with the smallest std (where a saturated actor ends up)."""
    grid = torch.linspace(-1, 1, 200_001, dtype=torch.float64)[1:-1]
    step = (grid[1] - grid[0]).item()
    for loc, scale in [(0.7, 0.8), (1.0, 0.1), (-0.95, 0.3), (0.0, 2.1)]:
        dist = TruncNormal(torch.tensor([loc], dtype=torch.float64), torch.tensor([scale], dtype=torch.float64))
        logp = dist.log_prob(grid[:, None])
        density = logp.exp()
        assert (density.sum() * step).item() == pytest.approx(1.0, abs=1e-3)
        assert dist.entropy().item() == pytest.approx(-(density * logp).sum().item() * step, abs=1e-3)
        torch.manual_seed(0)
        samples = TruncNormal(torch.full((50_000, 1), loc), torch.full((50_000, 1), scale)).rsample()
        assert samples.mean().item() == pytest.approx((density * grid).sum().item() * step, abs=0.01)
    # Pinning the mean at a bound halves the mass: it lowers the entropy, never rewards it.
    pinned = TruncNormal(torch.tensor([1.0]), torch.tensor([0.1])).entropy()
    inside = TruncNormal(torch.tensor([0.5]), torch.tensor([0.1])).entropy()
    assert pinned.item() == pytest.approx(inside.item() - np.log(2), abs=1e-4)


def fake_reward_agent(seed: int = 0, **agent):
    """Tiny agent whose imagined next deter state starts with the action and whose reward is
    a_0 - a_1, with zero critics: the best action is (+1, -1)."""
    agent = tiny_agent("vector", seed, **agent)
    wm, ac = agent.world_model, agent.behavior
    wm.rssm.transition = lambda deter, stoch, action: torch.cat([action, 0 * deter[..., 2:]], -1)
    wm.reward.forward = lambda feat: UnitGaussian(feat[..., 0] - feat[..., 1])
    for critic in (ac.critic, ac.slow_critic):
        torch.nn.init.zeros_(critic.net[-1].weight)
        torch.nn.init.zeros_(critic.net[-1].bias)
    b, t, cfg = 4, 8, agent.cfg
    post = {"deter": torch.randn(b, t, cfg.deter), "stoch": torch.zeros(b, t, cfg.stoch * cfg.classes),
            "logits": torch.zeros(b, t, cfg.stoch, cfg.classes)}
    post["stoch"][..., :: cfg.classes] = 1
    return agent, post, torch.zeros(b, t, dtype=torch.bool)


@pytest.mark.parametrize("actor_grad", ["dynamics", "reinforce"])
def test_actor_moves_towards_the_rewarded_action(actor_grad):
    agent, post, terminal = fake_reward_agent(actor_lr=3e-3, actor_grad=actor_grad)
    feat = torch.cat([post["deter"], post["stoch"]], -1).flatten(0, 1)
    with torch.no_grad():
        before = agent.behavior.actor(feat).mode.mean(0)
    for _ in range(60):
        actor_loss, _, _ = agent.behavior.loss(agent.world_model, post, terminal)
        agent.actor_opt.zero_grad()
        actor_loss.backward()
        agent.actor_opt.step()
    with torch.no_grad():
        after = agent.behavior.actor(feat).mode.mean(0)
    assert after[0] > before[0] + 0.3 and after[1] < before[1] - 0.3, (before, after)


def test_bounded_normal_score_of_its_samples_is_unbiased():
    """REINFORCE needs E[d log p(a) / d loc] = 0 over the distribution's own samples; scoring
    samples clipped to [-1, 1] instead biases it (here by about -0.46)."""
    torch.manual_seed(0)
    loc = torch.full((100_000, 1), 0.8, requires_grad=True)
    dist = BoundedNormal(loc, torch.full((100_000, 1), 0.5))
    action = dist.rsample().detach()
    assert action.abs().max() > 1  # raw samples leave the action bounds
    (score,) = torch.autograd.grad(dist.log_prob(action).sum(), loc)
    assert abs(score.mean().item()) < 0.03


@pytest.mark.parametrize("actor_grad", ["dynamics", "reinforce"])
def test_imagination_clips_the_transition_input_not_the_scored_action(actor_grad):
    agent = tiny_agent("vector", preset="dreamerv3", actor_grad=actor_grad)
    ac, rssm = agent.behavior, agent.world_model.rssm
    ac.actor.forward = lambda feat: BoundedNormal(torch.full((feat.shape[0], 2), 0.9), torch.ones(feat.shape[0], 2))
    seen, img_step = [], rssm.img_step
    rssm.img_step = lambda state, action, sample=True: seen.append(action) or img_step(state, action, sample)
    start = rssm.initial(64, "cpu")
    _, steps = ac.imagine(agent.world_model, start)
    raw = torch.stack([a for _, a in steps])
    assert raw.abs().max() > 1
    torch.testing.assert_close(torch.stack(seen), raw.clamp(-1, 1))


@pytest.mark.parametrize("preset", ["dreamerv2", "dreamerv3"])
def test_actor_and_critic_losses_reach_only_their_own_networks(preset):
    """The actor loss trains only the actor (gradients pass through, but do not accumulate in,
    the world model and critics); the critic loss only the critic (its target is detached)."""
    agent = tiny_agent("vector", preset=preset)
    data = agent.world_model.to_tensors(make_batch("vector"), "cpu")
    _, post, _ = agent.world_model.loss(data)
    actor_loss, critic_loss, _ = agent.behavior.loss(agent.world_model, post, data["is_terminal"])

    def touched(module):
        return {n for n, p in module.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}

    actor_loss.backward(retain_graph=True)
    assert touched(agent.behavior.actor)
    assert not touched(agent.world_model) and not touched(agent.behavior.critic)
    assert not touched(agent.behavior.slow_critic)
    agent.zero_grad(set_to_none=True)
    critic_loss.backward()
    assert touched(agent.behavior.critic)
    assert not touched(agent.world_model) and not touched(agent.behavior.actor)


@pytest.mark.parametrize("preset", ["dreamerv2", "dreamerv3"])
def test_dynamics_objective_is_the_normalized_advantage_in_dreamerv3(preset):
    """DreamerV3 backprops (R - v) / scale with v keeping its gradient; DreamerV2 R alone. The
    start value v_0 enters no return, so d loss / d v_0 is weight / (scale * entries) or 0."""
    agent = tiny_agent("vector", preset=preset)
    assert agent.cfg.actor_grad == "dynamics" and agent.cfg.actor_advantage == (preset == "dreamerv3")
    ac = agent.behavior
    values = []
    for critic in (ac.critic, ac.slow_critic):
        def forward(feat, net=critic.net, twohot=critic.twohot):
            out = net(feat)
            values.append(TwoHot(out.float()).mean if twohot else out[..., 0])
            return UnitGaussian(values[-1])
        critic.forward = forward
    data = agent.world_model.to_tensors(make_batch("vector"), "cpu")
    _, post, _ = agent.world_model.loss(data)
    actor_loss, _, _ = ac.loss(agent.world_model, post, data["is_terminal"])
    (grad,) = torch.autograd.grad(actor_loss, values[0])  # the bootstrap's value
    scale = (ac.return_high - ac.return_low).clamp_min(1) if agent.cfg.return_norm else 1.0
    expected = 1 / (scale * grad[:-1].numel()) if preset == "dreamerv3" else 0.0
    torch.testing.assert_close(grad[0], torch.full_like(grad[0], float(expected)))


@pytest.mark.parametrize("preset", ["dreamerv2", "dreamerv3"])
def test_initial_state_is_learned_in_dreamerv3(preset):
    """DreamerV3: episodes start from h0 = tanh(w), z0 the prior's mode, and w is trained by
    the world-model loss; DreamerV2 starts from zeros."""
    agent = tiny_agent("vector", preset=preset)
    rssm = agent.world_model.rssm
    init = rssm.initial(3, "cpu")
    if preset == "dreamerv2":
        assert not hasattr(rssm, "initial_deter") and not any(v.any() for v in init.values())
        return
    with torch.no_grad():
        rssm.initial_deter.normal_()
    init = rssm.initial(3, "cpu")
    torch.testing.assert_close(init["deter"], torch.tanh(rssm.initial_deter).expand(3, -1))
    torch.testing.assert_close(init["stoch"], rssm.sample(rssm.prior_logits(init["deter"]), sample=False))
    # At is_first the previous state and action are replaced by the initial state and zeros.
    embed = torch.randn(3, agent.world_model.encoder.out_dim)
    junk = {k: torch.randn_like(v) for k, v in init.items()}
    first = rssm.obs_step(junk, torch.randn(3, 2), embed, torch.ones(3, dtype=torch.bool), sample=False)
    fresh = rssm.obs_step(init, torch.zeros(3, 2), embed, torch.zeros(3, dtype=torch.bool), sample=False)
    for k in first:
        torch.testing.assert_close(first[k], fresh[k])
    loss, _, _ = agent.world_model.loss(agent.world_model.to_tensors(make_batch("vector"), "cpu"))
    (grad,) = torch.autograd.grad(loss, rssm.initial_deter)
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("preset", ["dreamerv2", "dreamerv3"])
def test_image_decoder_input_layer_norm_and_act_in_dreamerv3(preset):
    agent = tiny_agent("image", preset=preset)
    dec = agent.world_model.decoder
    seen = []
    dec.net[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    feat = torch.randn(5, agent.world_model.feat_dim)
    dec(feat)
    x = dec.inp(feat).reshape(5, dec.top, 4, 4)
    if preset == "dreamerv3":  # LayerNorm over the channels, then SiLU
        x = torch.nn.functional.silu(torch.nn.functional.layer_norm(
            x.permute(0, 2, 3, 1), (dec.top,), eps=1e-3).permute(0, 3, 1, 2))
    torch.testing.assert_close(seen[0], x)


@pytest.mark.parametrize("preset", ["dreamerv2", "dreamerv3"])
def test_world_model_weight_decay(preset):
    """DreamerV2's model_opt.wd = 1e-6 (DreamerV3: 0): each step first multiplies every
    world-model parameter, norms and biases included, by (1 - wd); the transition's coupled
    L2 (l2dyn) still comes on top through Adam's gradient."""
    cfg = resolve({"agent": {"preset": preset, "size": "tiny"}}).agent
    assert cfg.model_weight_decay == (1e-6 if preset == "dreamerv2" else 0.0)
    agent = tiny_agent("vector", preset=preset, model_weight_decay=0.1, transition_weight_decay=0.01)
    wm = agent.world_model
    opt = wm.optimizer()
    before = {n: p.detach().clone() for n, p in wm.named_parameters()}
    for p in wm.parameters():
        p.grad = torch.zeros_like(p)  # no loss gradient: Adam moves only the L2 group
    opt.step()
    transition = {id(p) for p in wm.rssm.transition_parameters()}
    for name, p in wm.named_parameters():
        if id(p) in transition:  # decayed, then Adam's first step on the L2 gradient g
            g = 0.01 * 0.9 * before[name]
            expected = 0.9 * before[name] - agent.cfg.model_lr * g / (g.abs() + agent.cfg.model_eps)
        else:
            expected = 0.9 * before[name]
        torch.testing.assert_close(p.detach(), expected, msg=name)
    assert any(n.endswith("bias") for n in before) and any("norm" in n for n in before)
    # A state dict of the plain Adam (older checkpoints) loads and keeps the configured decay.
    plain = torch.optim.Adam([{"params": g["params"]} for g in opt.param_groups])
    opt.load_state_dict(plain.state_dict())
    assert [g["decay"] for g in opt.param_groups] == [0.1, 0.1]


def test_agent_applies_world_model_weight_decay():
    agent = tiny_agent("vector", model_weight_decay=0.1)
    assert isinstance(agent.model_opt, DecayedAdam) and agent.model_opt.param_groups[0]["decay"] == 0.1


def test_replay_windows_start_with_is_first():
    """As in DreamerV2 and DreamerV3, a window sampled from inside an episode starts at the
    initial state: is_first[:, 0] is set; the rest and the stored episode are untouched."""
    replay = Replay(1000)
    length = 40
    first = np.zeros(length, bool)
    first[0] = True
    replay.add({"action": np.zeros((length, 2), np.float32), "reward": np.arange(length, dtype=np.float32),
                "is_first": first, "is_terminal": np.zeros(length, bool)})
    batch = replay.sample(64, 10, np.random.default_rng(0))
    assert (batch["reward"][:, 0] > 0).any()  # some windows start inside the episode
    assert batch["is_first"][:, 0].all() and not batch["is_first"][:, 1:].any()
    assert replay.episodes[0]["is_first"].sum() == 1
    plain = Replay(1000, first_at_start=False)
    plain.episodes = replay.episodes
    batch = plain.sample(64, 10, np.random.default_rng(0))
    np.testing.assert_array_equal(batch["is_first"][:, 0], batch["reward"][:, 0] == 0)


def test_config_modules_do_not_import_torch():
    code = "import sys, wmrobust.config, wmrobust.agent, wmrobust.agent.config; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def _two_updates(agent) -> list[dict[str, float]]:
    torch.manual_seed(1)
    return [agent.update(make_batch("vector", seed=s)) for s in (0, 1)]


@pytest.mark.skipif(compiler_available() is not None, reason="torch.compile needs a C++ compiler here")
@pytest.mark.parametrize("preset", ["dreamerv2", "dreamerv3"])
def test_compiled_steps_really_compile_and_agree_with_eager(preset):
    import torch._dynamo

    eager = _two_updates(tiny_agent(preset=preset, latent_error={"kind": "nonzero_drift"}))
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    torch.manual_seed(0)
    cfg = resolve({"agent": {"size": "tiny", "preset": preset, "latent_error": {"kind": "nonzero_drift"}}})
    agent = Agent(SPACES["vector"], 2, cfg.agent, "cpu", compile=True)
    assert agent.compiled
    compiled = _two_updates(agent)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 2  # obs_step and img_step
    for step_eager, step_compiled in zip(eager, compiled):
        assert step_eager.keys() == step_compiled.keys()
        for name, value in step_eager.items():
            assert step_compiled[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name


def test_compile_falls_back_to_eager_with_one_warning(monkeypatch):
    import wmrobust.agent.compiled as compiled

    monkeypatch.setattr(compiled, "compiler_available", lambda: "InvalidCxxCompiler: no working C++ compiler found")
    cfg = resolve({"agent": {"size": "tiny"}})
    with pytest.warns(RuntimeWarning, match=r"train\.compile: torch\.compile is unavailable here .*; training eagerly"):
        agent = Agent(SPACES["vector"], 2, cfg.agent, "cpu", compile=True)
    assert not agent.compiled and np.isfinite(agent.update(make_batch("vector"))["loss_model"])


def test_block_gru_updates_each_block_from_its_own_state_only():
    """agent.gru_blocks: d h'_k / d h_j is zero off the diagonal blocks; one block is the plain GRU."""
    for blocks in (1, 4):
        agent = tiny_agent(deter=32, gru_blocks=blocks)
        rssm = agent.world_model.rssm
        stoch, action = torch.randn(rssm.stoch_dim), torch.randn(2)
        jac = torch.autograd.functional.jacobian(lambda h: rssm.transition(h, stoch, action), torch.randn(32))
        mask = torch.block_diag(*[torch.ones(32 // blocks, 32 // blocks)] * blocks).bool()
        assert torch.all(jac[~mask] == 0) if blocks > 1 else jac.abs().min() > 0
        assert jac[mask].abs().sum() > 0
        assert np.isfinite(agent.update(make_batch("vector"))["loss_model"])


def test_size_1m_is_dreamerv3s_vector_size():
    cfg = resolve({"agent": {"preset": "dreamerv3", "size": "1m"}}).agent
    assert (cfg.deter, cfg.gru_blocks, cfg.hidden, cfg.classes, cfg.units) == (512, 8, 64, 4, 64)
    with pytest.raises(ValueError, match=r"agent.gru_blocks: 3 must be >= 1 and divide agent.deter \(512\)"):
        resolve({"agent": {"size": "1m", "gru_blocks": 3}})
