"""``nasforge proxies``: rank a sample of architectures by zero-cost proxies."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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


def test_the_table_shows_every_score_whole_even_in_a_narrow_terminal() -> None:
    args = ["proxies", "--task", "synthetic", "-n", "5", "--top", "5", "--proxy", "jacov",
            "--proxy", "synflow", "--proxy", "params", "--proxy", "flops"]  # fmt: skip
    run = [sys.executable, "-m", "nasforge.cli", *args]
    rows = [
        json.loads(line)
        for line in subprocess.run(
            [*run, "--json"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    ]
    wide = subprocess.run(
        run, capture_output=True, text=True, check=True, env={**os.environ, "COLUMNS": "200"}
    ).stdout
    table = [[cell.strip() for cell in line.split("│")[1:-1]] for line in wide.splitlines()]
    for row in rows:
        cells = next(c for c in table if c and c[0] == str(row["rank"]))
        scores = [row["scores"][n] for n in ("jacov", "synflow", "params", "flops")]
        # 4 significant digits; a count below a million whole
        assert cells[2:] == [
            f"{v:.0f}" if float(v).is_integer() and abs(v) < 1e6 else f"{v:.4g}" for v in scores
        ]
    narrow = subprocess.run(
        run, capture_output=True, text=True, check=True, env={**os.environ, "COLUMNS": "70"}
    ).stdout
    assert "…" not in narrow  # folded onto more lines, never cut
