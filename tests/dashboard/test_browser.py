"""The dashboard in a real headless Chromium: a search in progress shows up live.

Needs Debian's ``chromium`` (``scripts/ensure-chromium.sh`` installs it as root) and Playwright
for Python (``pip install playwright``; its own browser downloads are not used).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nasforge import api
from nasforge.dashboard import serve

CHROMIUM = Path(os.environ.get("NASFORGE_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT = 15_000  # ms: the page polls every second, the experiment list every three

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason=f"no Chromium at {CHROMIUM}: run scripts/ensure-chromium.sh as root "
    "(apt-get install chromium) or set NASFORGE_CHROMIUM",
)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)"
)
expect = sync_api.expect

NAME = "live-run"
HOSTILE = '<img src=x onerror="window.__xss=1">&amp; "quoted"'


def _search(db: Path, budget: int, name: str = NAME) -> None:
    api.search(
        benchmark="nas-bench-graph:cora", strategy="random", budget=budget, seed=0, name=name, db=db
    )


_SEARCH = """
from nasforge import api
api.search(benchmark="nas-bench-graph:cora", strategy="random", budget={budget}, seed=0,
           name={name!r}, db={db!r})
"""
_ADD_BEST_TRIAL = """
import time
from nasforge.result import Result
from nasforge.store.sql import open_store
with open_store({db!r}, create=False) as store:
    record = store.get_experiment({name!r})
    first = store.trials(record.id)[0]
    now = time.time()
    result = Result(metrics={{"val_acc": 0.999}}, test_metrics={{"test_acc": 0.5}})
    store.add_trial(record.id, first.arch, first.key, result, started_at=now, finished_at=now)
"""


_START_TRIAL = """
from nasforge.store.sql import open_store
with open_store({db!r}, create=False) as store:
    record = store.get_experiment({name!r})
    first = store.trials(record.id)[0]
    arch = first.arch.__class__.create("gnn", links=[0, 1, 2, 3], ops=["sage"] * 4)
    store.reserve_trial(record.id, arch, "running-one", fidelity=None, owner="elsewhere",
                        dedup_fidelity=False)
"""

_FINISH_TRIAL = """
import time
from nasforge.result import Result, Status
from nasforge.store.sql import open_store
with open_store({db!r}, create=False) as store:
    record = store.get_experiment({name!r})
    [running] = store.trials(record.id, status=Status.RUNNING)
    result = Result(metrics={{"val_acc": 0.9995}}, test_metrics={{"test_acc": 0.5}})
    assert store.finish_trial(running, result, finished_at=time.time()) is not None
"""


def _run_python(code: str) -> None:
    """Run ``code`` in another Python process: the store gets written by someone else."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True
        )
        yield chromium
        chromium.close()


class _Watched:
    """A page with every request URL and every script or console error it produced."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)


@pytest.fixture
def watched(browser: Any) -> Iterator[_Watched]:
    w = _Watched(browser)
    yield w
    w.context.close()


@pytest.mark.slow
def test_a_search_in_progress_updates_the_page_live(tmp_path: Path, watched: _Watched) -> None:
    db = tmp_path / "live.db"
    _search(db, 8)
    best = api.best(NAME, db=db)  # read before serving: the test process only reads via HTTP
    assert best is not None
    page = watched.page
    with serve(db, port=0) as server:
        page.goto(server.url)
        row = page.locator("#experiments tbody tr", has_text=NAME)
        expect(row).to_have_count(1, timeout=WAIT)
        expect(row.locator("td").nth(5)).to_have_text("8")  # the trials column
        page.evaluate("window.__marker = 'not reloaded'")

        row.get_by_role("button", name=NAME).click()
        expect(page.locator("#exp-name")).to_have_text(NAME)
        expect(page.locator("#exp-total")).to_have_text("8", timeout=WAIT)
        expect(page.locator("#trials tbody tr")).to_have_count(8)
        expect(page.locator("#exp-best")).to_have_attribute(
            "data-value", repr(best.metrics["val_acc"])
        )
        expect(page.locator("#plot circle")).to_have_count(8)

        # another process carries the search on: 4 more trials appear without a reload
        _run_python(_SEARCH.format(db=str(db), name=NAME, budget=12))
        expect(page.locator("#exp-total")).to_have_text("12", timeout=WAIT)
        expect(page.locator("#trials tbody tr")).to_have_count(12)
        expect(row.locator("td").nth(5)).to_have_text("12", timeout=WAIT)

        # another process stores a new best trial: the best value, table and plot follow
        _run_python(_ADD_BEST_TRIAL.format(db=str(db), name=NAME))
        expect(page.locator("#exp-best")).to_have_text("0.9990", timeout=WAIT)
        expect(page.locator("#exp-best")).to_have_attribute("data-value", "0.999")
        expect(page.locator("#exp-best-number")).to_have_text("trial 12")
        expect(page.locator("#exp-total")).to_have_text("13")
        expect(page.locator("#trials tbody tr").first).to_have_attribute("data-number", "12")
        expect(page.locator("#plot circle")).to_have_count(13)
        current = page.locator("#plot circle.current")
        expect(current).to_have_count(1)
        expect(current.locator("title")).to_have_text("#12: 0.9990")
        assert page.locator("#plot circle.record").count() >= 2  # each new best is marked

        # a trial starts in another process: shown RUNNING, then updated in place when it ends
        _run_python(_START_TRIAL.format(db=str(db), name=NAME))
        newest = page.locator('#trials tbody tr[data-number="13"]')
        expect(newest.locator("td").nth(1)).to_have_text("RUNNING", timeout=WAIT)
        _run_python(_FINISH_TRIAL.format(db=str(db), name=NAME))
        expect(newest.locator("td").nth(1)).to_have_text("COMPLETE", timeout=WAIT)
        expect(page.locator("#exp-best")).to_have_attribute("data-value", "0.9995")
        expect(page.locator("#exp-best-number")).to_have_text("trial 13")
        expect(page.locator("#trials tbody tr")).to_have_count(14)
        expect(page.locator("#plot circle")).to_have_count(14)
        assert page.evaluate("window.__marker") == "not reloaded"

    polls = [u for u in watched.requests if "/api/trials?" in u]
    assert any("after=7" in u for u in polls) and any("after=11" in u for u in polls)
    assert sum("after=-1" in u for u in polls) <= 2  # the whole list is fetched once
    assert all(u.startswith(server.url) for u in watched.requests), watched.requests
    assert watched.errors == []


def test_stored_strings_are_shown_as_text_never_as_html(tmp_path: Path, watched: _Watched) -> None:
    db = tmp_path / "hostile.db"
    _search(db, 3, name=HOSTILE)
    page = watched.page
    with serve(db, port=0) as server:
        page.goto(server.url + "#" + "%3Cimg")  # an unknown experiment in the address: no harm
        button = page.get_by_role("button", name=HOSTILE)
        expect(button).to_have_count(1, timeout=WAIT)
        button.click()
        expect(page.locator("#exp-name")).to_have_text(HOSTILE, timeout=WAIT)
        expect(page.locator("#exp-total")).to_have_text("3", timeout=WAIT)
        assert page.locator("img").count() == 0
        assert page.evaluate("typeof window.__xss") == "undefined"
    assert [e for e in watched.errors if "404" not in e] == []


def test_remote_mode_needs_the_token_once(tmp_path: Path, browser: Any) -> None:
    db = tmp_path / "remote.db"
    _search(db, 3)
    with serve(db, "127.0.0.1", 0, allow_remote=True) as server:
        stranger = _Watched(browser)
        try:
            response = stranger.page.goto(server.url)
            assert response is not None and response.status == 401
            expect(stranger.page.locator("body")).to_contain_text("needs its token")
        finally:
            stranger.context.close()

        owner = _Watched(browser)
        try:
            owner.page.goto(f"{server.url}?token={server.token}")
            assert owner.page.url == server.url  # the token left the address bar
            expect(owner.page.get_by_role("button", name=NAME)).to_have_count(1, timeout=WAIT)
            assert owner.errors == []
        finally:
            owner.context.close()
