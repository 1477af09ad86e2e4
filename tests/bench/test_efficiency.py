"""`bench efficiency` (Table 5 at a real shape): one strategy's figures, the ratios, the page, bad options."""

from __future__ import annotations

import argparse

import pytest

from bench.errors import UsageError
from bench.studies import efficiency


def test_one_strategy_is_measured_with_the_real_training_step(tiny_root):
    row = efficiency.measure("self+cross", "tiny", str(tiny_root), "tiny", steps=2, batch=4, device="cpu", seed=0)
    assert row["steps"] == 2 and row["s_per_step"] > 0 and row["tokens_per_step"] > 0
    assert 0 < row["trainable_params"] < row["total_params"]  # adapters on a frozen backbone
    assert row["peak_memory_mb"] >= row["peak_memory_model_mb"] > 0
    full = efficiency.measure("full", "tiny", str(tiny_root), "tiny", steps=1, batch=4, device="cpu", seed=0)
    assert full["trainable_params"] == full["total_params"]  # full fine-tuning trains every parameter


def test_ratios_and_page(monkeypatch, tiny_root):
    fake = {"self": (2.0, 900.0, 100.0, 10), "full": (4.0, 1000.0, 400.0, 100)}

    def measured(strategy, *a, **k):
        s, peak, own, trainable = fake[strategy]
        return {"strategy": strategy, "s_per_step": s, "steps": 3, "tokens_per_step": 50.0,
                "trainable_params": trainable, "total_params": 100, "peak_memory_mb": peak,
                "peak_memory_model_mb": own, "memory_kind": "cpu_peak_rss", "torch_threads": 1}

    class Done:
        returncode, stderr = 0, ""

        def __init__(self, strategy):
            import json

            self.stdout = "progress line\n" + json.dumps(measured(strategy))

    monkeypatch.setattr(efficiency.subprocess, "run", lambda cmd, **k: Done(cmd[cmd.index("--one") + 1]))
    args = argparse.Namespace(strategies=["self", "full"], dataset="tiny", data_root=str(tiny_root), shape="tiny",
                              steps=3, batch=4, device="cpu", seed=0)
    report = efficiency.run(args)
    row = report["rows"][0]
    assert row["s_per_step_vs_full"] == 0.5 and row["peak_memory_model_mb_vs_full"] == 0.25
    assert row["trainable_pct"] == 10
    page = efficiency.markdown(report)
    assert "| Self-attention adapters" in page and "0.25" in page and "3 optimizer steps" in page


@pytest.mark.parametrize("over", [{"strategies": ["half"]}, {"steps": 0}])
def test_bad_options_are_one_line_usage_errors(over):
    args = argparse.Namespace(strategies=["self", "full"], steps=3, batch=4)
    for k, v in over.items():
        setattr(args, k, v)
    with pytest.raises(UsageError, match="--st"):
        efficiency.cmd_efficiency(args)
