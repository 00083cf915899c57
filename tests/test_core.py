"""Architecture, Objective, Budget, Result and Registry: the core value types."""

from __future__ import annotations

import math

import pytest

from nasforge.architecture import Architecture
from nasforge.budget import Budget, BudgetUnit
from nasforge.errors import ConfigError, InvalidArchitectureError, UnknownNameError
from nasforge.objective import Direction, Objective
from nasforge.registry import Registry
from nasforge.result import Result, Status


def test_architecture_is_immutable_plain_data() -> None:
    arch = Architecture.create("gnn", ops=["gcn", "fc"], links=[0, 1])
    assert arch["links"] == (0, 1) and dict(arch) == {"links": (0, 1), "ops": ("gcn", "fc")}
    assert arch == Architecture.create("gnn", links=(0, 1), ops=("gcn", "fc"))
    assert {arch: 1}[Architecture.from_json(arch.to_json())] == 1
    assert str(arch) == "gnn[links=0,1 ops=gcn,fc]"
    with pytest.raises(AttributeError):
        arch.space = "x"  # type: ignore[misc]
    with pytest.raises(InvalidArchitectureError, match="has type dict"):
        Architecture.create("gnn", ops={"a": 1})
    with pytest.raises(InvalidArchitectureError, match="not valid JSON"):
        Architecture.from_json("{oops")
    with pytest.raises(InvalidArchitectureError, match="must be an object"):
        Architecture.from_dict({"genes": {}})


def test_objective_parsing_and_ordering() -> None:
    assert Objective.parse("val_acc:max") == Objective("val_acc", Direction.MAXIMIZE)
    assert Objective.parse("latency_ms:min").direction is Direction.MINIMIZE
    assert Objective.parse("val_acc").direction is Direction.MAXIMIZE
    with pytest.raises(ConfigError, match="must be one of max, min"):
        Objective.parse("val_acc:up")
    with pytest.raises(ConfigError, match="is a test metric"):
        Objective("test_acc")
    lo = Objective("loss", Direction.MINIMIZE)
    assert lo.better(0.1, 0.2) and not lo.better(math.nan, 0.2) and lo.better(0.3, math.nan)
    assert lo.score(math.nan) == -math.inf


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("100", 100, BudgetUnit.ARCHS),
        ("100archs", 100, BudgetUnit.ARCHS),
        ("500trials", 500, BudgetUnit.TRIALS),
        ("90s", 90, BudgetUnit.SECONDS),
        ("1.5m", 90, BudgetUnit.SECONDS),
        ("2h", 7200, BudgetUnit.SECONDS),
    ],
)
def test_budget_parse(text: str, amount: float, unit: BudgetUnit) -> None:
    assert Budget.parse(text) == Budget(amount, unit)


@pytest.mark.parametrize("text", ["0", "-5", "", "ten", "5 parsecs", "2.5", "0s"])
def test_budget_rejects_with_the_rule(text: str) -> None:
    with pytest.raises(ConfigError, match="a budget is a positive number"):
        Budget.parse(text)


def test_result_validation_and_visibility() -> None:
    res = Result(metrics={"val_acc": 0.9}, test_metrics={"test_acc": 0.8}, costs={"params": 3})
    assert res.ok and res.visible().test_metrics == {} and res.visible().metrics == res.metrics
    assert not Result(metrics={"val_acc": math.inf}).ok
    assert not Result.failed("x").ok and Result.failed("x").status is Status.FAILED
    with pytest.raises(ConfigError, match="must be a number"):
        Result(metrics={"val_acc": "high"})
    with pytest.raises(ConfigError, match="a Result is final"):
        Result(status=Status.RUNNING)


def test_registry_lists_valid_names_and_suggests() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("alpha", lambda: 1, summary="the first")
    reg.register("beta", lambda: 2)
    assert reg.create("alpha") == 1 and reg.names() == ["alpha", "beta"] and "beta" in reg
    with pytest.raises(
        UnknownNameError,
        match=r"unknown widget 'alpah'; valid: alpha, beta\. Did you mean 'alpha'\?",
    ):
        reg.get("alpah")
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("alpha", lambda: 3)
