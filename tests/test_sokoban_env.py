"""The gymnasium Sokoban env, renderers and the batched env."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs.sokoban.env import SokobanEnv
from envs.sokoban.render import DEFAULT_SYMBOLS, render_image, render_text, render_text_batch, sprite_atlas
from envs.sokoban.vector import SokobanVecEnv


@pytest.mark.parametrize("obs_mode", ["text", "image", "both"])
def test_check_env(obs_mode):
    env = gym.make("mmsft/Sokoban-v0", dim=(6, 6), num_boxes=1, obs_mode=obs_mode, cell_px=8)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=1)
    assert set(obs) == {"text", "image"} & ({"text", "image"} if obs_mode == "both" else {obs_mode})
    for key in ("success", "action_is_valid", "action_is_effective", "level_id", "optimal_len"):
        assert key in info


@pytest.mark.parametrize("render_mode", ["rgb_array", "ansi"])
def test_render_modes(render_mode):
    env = SokobanEnv(dim=(6, 6), render_mode=render_mode, cell_px=8)
    env.reset(seed=0)
    frame = env.render()
    if render_mode == "ansi":
        assert frame == env.text()
    else:
        assert frame.shape == (48, 48, 3) and frame.dtype == np.uint8


def test_seeds_reproduce_levels_observations_and_renders():
    a = SokobanEnv(dim=(7, 7), num_boxes=2, obs_mode="both", cell_px=8)
    b = SokobanEnv(dim=(7, 7), num_boxes=2, obs_mode="both", cell_px=8)
    oa, ia = a.reset(seed=42)
    ob, ib = b.reset(seed=42)
    assert oa["text"] == ob["text"] and np.array_equal(oa["image"], ob["image"]) and ia == ib
    for action in [0, 3, 1, 2, 2, 0]:
        sa, sb = a.step(action), b.step(action)
        assert sa[0]["text"] == sb[0]["text"] and np.array_equal(sa[0]["image"], sb[0]["image"])
        assert sa[1:] == sb[1:]
    assert a.reset(seed=43)[1]["level_id"] != ia["level_id"]


def test_optimal_plan_solves_env_and_truncation():
    env = SokobanEnv(dim=(6, 6), max_steps=200)
    _, info = env.reset(seed=5)
    from envs.sokoban.solver import solve_astar
    plan = solve_astar(env.level)
    assert len(plan) == info["optimal_len"]
    for k, action in enumerate(plan.actions):
        _, reward, terminated, truncated, info = env.step(action)
        assert terminated == (k == len(plan) - 1) and not truncated
    assert info["success"] and reward > 10
    env = SokobanEnv(dim=(6, 6), max_steps=2)
    env.reset(seed=5)
    truncs = [env.step(0)[3] for _ in range(2)]
    assert truncs == [False, True] or env.state().is_solved()


def test_env_errors():
    with pytest.raises(ValueError, match="obs_mode"):
        SokobanEnv(obs_mode="video")
    env = SokobanEnv()
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(4)
    with pytest.raises(ValueError, match="options"):
        env.reset(options={"bogus": 1})


def test_reset_with_explicit_level():
    env = SokobanEnv(dim=(5, 6))
    rows = ["######", "#    #", "# $. #", "# @  #", "######"]
    obs, info = env.reset(options={"level": {"rows": rows}})
    assert obs["text"].splitlines()[2] == "#_XO_#"
    assert info["optimal_len"] == 3  # Left, Up, push Right


def test_text_renderers_agree():
    env = SokobanEnv(dim=(8, 8), num_boxes=2)
    codes = np.stack([env.reset(seed=s)[0] and env.codes() for s in range(4)])
    single = [render_text(c) for c in codes]
    assert render_text_batch(codes) == single
    emoji = ("🧱", "⬛", "🎯", "✅", "📦", "🙂", "😀")
    assert render_text_batch(codes, emoji) == [render_text(c, emoji) for c in codes]
    assert set("".join(single)) <= set("".join(DEFAULT_SYMBOLS) + "\n")


def test_image_renderer_uses_cached_atlas():
    assert sprite_atlas(16) is sprite_atlas(16)
    codes = np.arange(7, dtype=np.uint8).reshape(1, 7)
    image = render_image(codes, 16)
    assert image.shape == (16, 112, 3)
    for code in range(7):
        assert np.array_equal(image[:, code * 16:(code + 1) * 16], sprite_atlas(16)[code])
    assert len({sprite_atlas(16)[c].tobytes() for c in range(7)}) == 7


def test_batched_env_equals_list_of_single_envs():
    seeds = list(range(200, 212))
    kwargs = dict(dim=(7, 7), num_boxes=2, obs_mode="both", max_steps=25, cell_px=6)
    vec = SokobanVecEnv(len(seeds), **kwargs)
    singles = [SokobanEnv(**kwargs) for _ in seeds]
    obs_v, info_v = vec.reset(seeds)
    for j, (env, seed) in enumerate(zip(singles, seeds)):
        obs, info = env.reset(seed=seed)
        assert obs["text"] == obs_v["text"][j] and np.array_equal(obs["image"], obs_v["image"][j])
        assert info["level_id"] == info_v["level_id"][j] and info["optimal_len"] == info_v["optimal_len"][j]
    rng = np.random.default_rng(0)
    for _ in range(40):
        actions = rng.integers(0, 4, len(seeds))
        obs_v, rew_v, term_v, trunc_v, info_v = vec.step(actions)
        for j, env in enumerate(singles):
            obs, rew, term, trunc, info = env.step(int(actions[j]))
            assert obs["text"] == obs_v["text"][j] and np.array_equal(obs["image"], obs_v["image"][j])
            assert rew == pytest.approx(rew_v[j]) and term == term_v[j] and trunc == trunc_v[j]
            assert info["action_is_effective"] == info_v["action_is_effective"][j]
            assert info["success"] == info_v["success"][j]


def test_batched_group_reset_and_errors():
    vec = SokobanVecEnv(6, dim=(6, 6))
    obs, info = vec.reset_groups([7, 8], group_size=3)
    assert obs["text"][:3] == [obs["text"][0]] * 3 and obs["text"][3] != obs["text"][0]
    assert info["level_seed"] == [7, 7, 7, 8, 8, 8]
    with pytest.raises(ValueError, match="group_size"):
        vec.reset_groups([1], group_size=3)
    with pytest.raises(ValueError, match="actions"):
        vec.step(np.array([0, 1, 2, 3, 4, 0]))
    with pytest.raises(ValueError, match="seeds"):
        vec.reset([1, 2])
    vec.reset_at(0, seed=9)
    assert vec.level_seeds[0] == 9


def test_fast_text_matches_renderer_for_multichar_symbols():
    emoji = ("🧱", "⬛", "🎯", "✅", "📦", "🙂", "😀")
    env = SokobanEnv(dim=(7, 7), num_boxes=2, symbols=emoji)
    env.reset(seed=4)
    rng = np.random.default_rng(1)
    for action in rng.integers(0, 4, 30):
        obs = env.step(int(action))[0]
        assert obs["text"] == render_text(env.codes(), emoji)
