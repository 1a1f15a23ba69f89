"""Rewards and controls of the objective zoo: the execution sandbox contains malicious outputs (shell, endless loop,
fork bomb, 1 GB allocation, sockets, file writes) and scores them 0 with a counted reason; Think2SQL EX and partial
rewards on a real SQLite database (read-only copy, malicious SQL contained); RL-Struct, tool-call and TLDR golden
values; the ConMax and encoder-cosine factories on the tiny model and on hostile strings; AceReason's temperature
bisection. (Registered rewards are also fed adversarial strings by tests/test_hostile_outputs.py.)"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from types import SimpleNamespace

import pytest

from mmsft.rewards import get_reward
from mmsft.rewards import sandbox
from mmsft.rewards.sandbox import Limits, run_python

FAST = Limits(timeout_s=1.0, memory_bytes=256 * 2 ** 20)


# ---- sandbox ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code,reason", [
    ("import os; os.system('touch {marker}')", "refused"),
    ("while True: pass", "timeout"),
    ("import os\nwhile True: os.fork()", "refused"),
    ("x = bytearray(1024 ** 3)", "memory"),
    ("import socket; socket.create_connection(('127.0.0.1', 9))", "refused"),
    ("open('{marker}', 'w').write('x')", "refused"),
    ("import subprocess; subprocess.run(['touch', '{marker}'])", "refused"),
    ("import ctypes; ctypes.CDLL(None).system(b'touch {marker}')", "refused"),
])
def test_malicious_code_is_contained_and_counted(tmp_path, code, reason):
    marker = tmp_path / "pwned"
    before = sandbox.STATS[reason]
    result = run_python(code.format(marker=marker), FAST)
    assert result["ok"] is False and result["reason"] == reason, result
    assert sandbox.STATS[reason] == before + 1
    assert not marker.exists()


def test_benign_code_runs_and_prints():
    assert run_python("print(sum(range(10)))", FAST) == {"ok": True, "stdout": "45\n"}


# ---- Think2SQL -------------------------------------------------------------------------------------------------------
@pytest.fixture()
def sql_data(tmp_path):
    db = tmp_path / "shop.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE items (id INTEGER, name TEXT, price REAL)")
    conn.executemany("INSERT INTO items VALUES (?, ?, ?)", [(1, "pen", 1.5), (2, "cup", 4.0), (3, "hat", 9.0)])
    conn.commit()
    conn.close()
    sample = SimpleNamespace(id="q1", answer="SELECT name FROM items WHERE price > 2", meta={"db_path": "shop.db"},
                             source=f"{tmp_path / 'data.jsonl'}:1")
    return db, sample


def test_sql_execution_and_partial_rewards(sql_data):
    db, sample = sql_data
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    ex, partial = get_reward("sql_execution"), get_reward("sql_partial")
    right = "<think>cheap ones out</think>```sql\nSELECT name FROM items WHERE price >= 4 ORDER BY id DESC\n```"
    wrong = "<answer>SELECT name FROM items</answer>"
    assert ex([sample, sample], [right, wrong]) == [1.0, 0.0]
    # pred cells {pen, cup, hat} vs gold {cup, hat}: precision 2/3, recall 1, cardinality 2/3
    assert partial([sample], [wrong]) == [pytest.approx((2 / 3 + 1 + 2 / 3) / 3)]
    assert partial([sample], ["SELECT name FROM items WHERE price > 100"]) == [0.0]  # exactly one side empty
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("sql,reason", [
    ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", "timeout"),
    ("SELECT zeroblob(1000000000)", "memory"),
    ("ATTACH DATABASE '/tmp/evil.db' AS evil", "sql_error"),
    ("DROP TABLE items", "sql_error"),
    ("import os; os.system('rm -rf /')", "sql_error"),
])
def test_malicious_sql_is_contained(sql_data, sql, reason, monkeypatch):
    from mmsft.rewards import sql as sql_module

    monkeypatch.setattr(sql_module, "LIMITS", FAST)
    db, sample = sql_data
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    before = sandbox.STATS[reason]
    assert get_reward("sql_execution")([sample], [sql]) == [0.0]
    assert sandbox.STATS[reason] == before + 1
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert get_reward("sql_execution")([sample], ["SELECT name FROM items WHERE price > 2"]) == [1.0]  # still intact


def test_sql_reward_without_a_database_scores_zero_with_a_reason():
    before = sandbox.STATS["no_database_or_gold"]
    assert get_reward("sql_partial")([SimpleNamespace(id="x", answer="SELECT 1", meta={})], ["SELECT 1"]) == [0.0]
    assert sandbox.STATS["no_database_or_gold"] == before + 1


# ---- RL-Struct, tool calls, TLDR -------------------------------------------------------------------------------------
SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}, "unit": {"type": "string"}},
          "required": ["answer", "unit"], "additionalProperties": False}


def _struct(text: str, answer=None):
    sample = SimpleNamespace(id="j", answer=answer if answer is not None else {"answer": 42, "unit": "kg"},
                             meta={"json_schema": SCHEMA})
    return get_reward("json_structure")([sample], [text])[0]


def test_json_structure_parts():
    assert _struct('{"answer": 42, "unit": "kg"}') == {"struct": 0.25, "format": 0.25, "valid": 0.25, "correct": 0.25}
    fenced = _struct('Here:\n```json\n{"answer": 42, "unit": "kg"}\n```')
    assert fenced == {"struct": 0.25, "format": 0.0, "valid": 0.25, "correct": 0.25}
    extra = _struct('{"answer": "42", "unit": "kg", "note": "x"}')  # wrong type + a hallucinated key
    assert extra["valid"] == 0.0 and extra["correct"] == 0.0 and extra["format"] == 0.25
    assert extra["struct"] == pytest.approx(0.25 * 2 * (2 / 3) * 1 / (2 / 3 + 1))  # key F1: precision 2/3, recall 1
    assert _struct("no json at all") == {"struct": 0.0, "format": 0.0, "valid": 0.0, "correct": 0.0}


def test_tool_call_reward():
    gold = {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}
    sample = SimpleNamespace(id="t", answer=None, meta={"tool_call": gold})
    fn = get_reward("tool_call")
    full = '<think>need weather</think><tool_call>{"name": "get_weather", "arguments": {"days": 2.0, "city": "Paris"}}</tool_call>'
    half = '<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\", \\"days\\": 2}"}</tool_call>'
    other = '{"name": "get_time", "arguments": {}}'
    values = fn([sample] * 4, [full, half, other, "I cannot call tools"])
    assert values == [{"tool": 0.8, "format": 0.2}, {"tool": 0.4, "format": 0.2}, {"tool": 0.0, "format": 0.2},
                      {"tool": 0.0, "format": 0.0}]


def test_tldr_length_penalty():
    fn = get_reward("tldr_length")
    short = SimpleNamespace(id="s", meta={"length_level": "short"})
    budget = SimpleNamespace(id="b", meta={"length_budget": 10})
    assert fn([short, budget, budget, budget, SimpleNamespace(id="n", meta={})],
              ["w " * 100, "w " * 10, "w " * 15, "w " * 1000, "w " * 1000]) == [0.0, 0.0, -0.5, -1.0, 0.0]


# ---- model-based factories --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prompt_sample():
    from mmsft.data.schema import sample_from_dict

    return sample_from_dict({"id": "c", "messages": [{"role": "user", "content": "What colour is the sky?"}],
                             "answer": "blue"}, "c.jsonl:1")


def test_conmax_parts_depend_on_the_right_tokens(tiny_models, prompt_sample):
    from dataclasses import replace

    from mmsft.rewards.confidence import conmax_reward

    fn = conmax_reward(str(tiny_models["text"]), w_ans=1.0, w_think=1.0, max_tokens=64)
    first = fn([prompt_sample], ["The sky scatters short wavelengths."])[0]
    other_answer = fn([replace(prompt_sample, answer="green")], ["The sky scatters short wavelengths."])[0]
    assert first["think"] == pytest.approx(other_answer["think"], abs=1e-5)  # causal: the trace never sees the answer
    assert first["ans"] != pytest.approx(other_answer["ans"], abs=1e-5)
    assert all(math.isfinite(v) and v < 0 for v in first.values())
    assert fn([prompt_sample], ["x" * 10_000])[0] == {"ans": -20.0, "think": -20.0}  # over max_tokens: the floor


def test_model_rewards_are_total_on_hostile_strings(tiny_models, prompt_sample):
    from mmsft.rewards.confidence import conmax_reward
    from mmsft.rewards.similarity import encoder_cosine_reward
    from tests.test_hostile_outputs import ADVERSARIAL

    conmax = conmax_reward(str(tiny_models["text"]), max_tokens=64)
    cosine = encoder_cosine_reward(str(tiny_models["text"]), max_tokens=64)
    sample = SimpleNamespace(id="h", answer="blue", meta={"explanation": "light scatters"})
    for name, text in ADVERSARIAL.items():
        for value in (conmax([prompt_sample], [text])[0], {"cos": cosine([sample], [text])[0]}):
            assert all(math.isfinite(v) for v in value.values()), name


def test_encoder_cosine_reward(tiny_models):
    from mmsft.rewards.similarity import encoder_cosine_reward, think_text

    fn = encoder_cosine_reward(str(tiny_models["text"]), reference_key="explanation")
    sample = SimpleNamespace(id="e", answer="B", meta={"explanation": "the heart pumps blood"})
    same, other = fn([sample, sample], ["<think>the heart pumps blood</think>B", "<think>tax law</think>B"])
    assert same == pytest.approx(1.0, abs=1e-5) and 0.0 <= other < same
    assert fn([SimpleNamespace(id="n", answer=None, meta={})], ["anything"]) == [0.0]
    assert think_text("a<think>b</think>c<think>d") == "d"


# ---- AceReason temperature -------------------------------------------------------------------------------------------
def test_choose_temperature_bisects_to_the_target_entropy():
    from mmsft.objectives.rl_controls import choose_temperature, tempered_entropy
    import torch

    tau, seen = choose_temperature(lambda t: t * t, target=0.3, low=0.3, high=1.5, steps=10)
    assert tau == pytest.approx(math.sqrt(0.3), abs=1.2 / 2 ** 10 * 2)
    assert len(seen) == 10
    log_probs = torch.log_softmax(torch.tensor([[2.0, 1.0, 0.0]]), -1)
    assert tempered_entropy(log_probs, 0.5).item() < tempered_entropy(log_probs, 1.0).item() < \
        tempered_entropy(log_probs, 2.0).item()


def test_measured_rollout_entropy_grows_with_temperature(tiny_models, text_dataset):
    from mmsft.data.loaders import load_dataset
    from tasks.objective_study.temperature import measure_entropy

    samples = load_dataset(str(text_dataset))[:2]
    cold = measure_entropy(str(tiny_models["text"]), samples, 0.3, max_new_tokens=4)
    hot = measure_entropy(str(tiny_models["text"]), samples, 1.5, max_new_tokens=4)
    assert 0 <= cold < hot


def test_reward_values_are_json_serialisable():
    sample = SimpleNamespace(id="j", answer={"a": 1}, meta={})
    json.dumps(get_reward("json_structure")([sample], ['{"a": 1}']))
