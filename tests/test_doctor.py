"""``mmsft doctor``: exits 0 here and lists each check with a status and, when something is wrong, a fix; its
subprocess probe survives a crash and a hang; the CPU probe reads bf16 flags; the table view prints every check."""

from __future__ import annotations

import json

from mmsft.cli import main
from mmsft.commands import doctor
from mmsft.report.environment import cpu_info

EXPECTED = ("python", "torch", "torchvision", "transformers", "accelerate", "peft", "torchvision import",
            "video decode (decord)", "video decode (PyAV)", "LIBERO rendering (EGL)", "LIBERO rendering (OSMesa)",
            "CPU bf16", "CUDA")


def test_doctor_json_lists_every_check(capsys):
    assert main(["doctor", "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)
    names = [c["name"] for c in checks]
    assert names[: len(EXPECTED)] == list(EXPECTED)
    assert {"extra [video]", "extra [dev]", "extra [wandb]", "extra [mlflow]", "extra [trackio]"} <= set(names)
    for check in checks:
        assert check["status"] in ("ok", "warn", "missing", "fail", "info"), check
        assert check["detail"], check
        if check["status"] in ("warn", "missing", "fail"):
            assert check["hint"], f"{check['name']}: no fix hint"
    by_name = {c["name"]: c for c in checks}
    import torch

    assert by_name["torch"]["status"] == "ok" and by_name["torch"]["detail"] in torch.__version__
    assert by_name["CUDA"]["status"] == ("ok" if torch.cuda.is_available() else "info")
    assert "matmul bf16" in by_name["CPU bf16"]["detail"]
    assert by_name["extra [dev]"]["status"] == "ok"  # pytest runs this very test


def test_doctor_table_prints_each_check(monkeypatch, capsys):
    checks = [doctor.Check("torch", "ok", "2.x"), doctor.Check("extra [wandb]", "missing", "missing: wandb",
                                                              "pip install 'mmsft[wandb]'")]
    monkeypatch.setattr(doctor, "run_checks", lambda timeout: checks)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "extra [wandb]" in out and "pip install 'mmsft[wandb]'" in out  # not eaten as markup
    assert "2 checks; nothing failing" in out


def test_probe_reports_crashes_and_hangs():
    assert doctor._probe("print('fine')", 30) == (True, "fine")
    ok, detail = doctor._probe("import os; os.abort()", 30)
    assert not ok and detail.startswith("crashed (signal 6)")
    ok, detail = doctor._probe("import time; time.sleep(30)", 0.5)
    assert not ok and detail == "timed out after 0.5 s"
    ok, detail = doctor._probe("raise SystemExit('no EGL device')", 30)
    assert not ok and detail == "no EGL device"


def test_cpu_info_reads_bf16_flags(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse avx512_bf16 amx_tile amx_bf16\n\n"
                    "processor\t: 1\nmodel name\t: Test CPU\nflags\t\t: fpu\n")
    assert cpu_info(str(path))["model"] == "Test CPU"
    assert cpu_info(str(path))["bf16_flags"] == ["amx_bf16", "avx512_bf16"]
    assert cpu_info(str(tmp_path / "missing"))["bf16_flags"] == []
