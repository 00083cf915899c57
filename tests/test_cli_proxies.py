"""``nasforge proxies``: rank a sample of architectures by zero-cost proxies."""

from __future__ import annotations

import json

import pytest

from nasforge.cli import main


def test_ranks_a_sample_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["proxies", "--task", "tabular:wine", "-n", "6", "--proxy", "grad_norm",
         "--proxy", "params", "--json"]
    )  # fmt: skip
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [r["rank"] for r in rows] == list(range(1, 7))
    scores = [r["scores"]["grad_norm"] for r in rows]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    assert len({r["key"] for r in rows}) == 6
    assert all(r["scores"]["params"] == r["costs"]["params"] for r in rows)


def test_bad_proxy_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["proxies", "--task", "tabular:wine", "--proxy", "magic"]) == 2
    assert "unknown proxy 'magic'; valid: synflow" in capsys.readouterr().err
