"""Objectives and hard constraints through the one search loop, on real tables and training."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from nasforge import api
from nasforge.cli import main
from nasforge.constraint import Constraint
from nasforge.errors import ConfigError
from nasforge.evaluators.benchmark import NasBenchGraphEvaluator
from nasforge.objective import Direction, Objective
from nasforge.pareto import dominates, objective_values
from nasforge.result import Status

ACC_LAT = ["val_acc:max", "latency_ms:min"]


def _cora_quantile(cost: str, q: float) -> float:
    """A quantile of a cost over 300 sampled cora architectures (real table values)."""
    ev = NasBenchGraphEvaluator(dataset="cora")
    rng = np.random.default_rng(123)
    values = [ev.known_costs(ev.space.sample(rng), [cost])[cost] for _ in range(300)]
    return float(np.quantile(values, q))


# -- constraints: parsing -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "metric", "op", "bound"),
    [
        ("params<=1e6", "params", "<=", 1e6),
        ("latency_ms < 5", "latency_ms", "<", 5.0),
        ("flops<=300M", "flops", "<=", 3e8),
        ("val_acc>=0.8", "val_acc", ">=", 0.8),
        ("params>2k", "params", ">", 2e3),
    ],
)
def test_constraint_parses(text: str, metric: str, op: str, bound: float) -> None:
    c = Constraint.parse(text)
    assert (c.metric, c.op, c.bound) == (metric, op, bound)
    assert Constraint.parse(str(c)) == c


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("params", "a constraint is METRIC OP NUMBER"),
        ("params=<5", "a constraint is METRIC OP NUMBER"),
        ("params<=lots", "is not a number"),
        ("test_acc>=0.5", "test metric"),
        ("params<=inf", "finite"),
    ],
)
def test_malformed_constraints_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Constraint.parse(text)


def test_constraint_violation_names_the_value() -> None:
    c = Constraint.parse("params<=100")
    assert c.violation({}, {"params": 50}) is None
    assert c.violation({}, {"params": 150}) == "violates params<=100 (params=150)"
    assert "missing" in str(c.violation({}, {}))
    assert not c.holds(math.nan)


# -- constraints in the loop ----------------------------------------------------------------
def test_known_cost_constraint_filters_before_evaluation(db_path: Path) -> None:
    bound = _cora_quantile("params", 0.4)
    result = api.search(
        benchmark="nas-bench-graph:cora",
        strategy="evolution",
        budget=40,
        db=db_path,
        name="small",
        constraints=[f"params<={bound}"],
    )
    stored = api.trials("small", db=db_path)
    assert len({t.key for t in stored}) == 40  # the budget counts evaluated architectures
    assert all(t.costs["params"] <= bound for t in stored)  # nothing violating was stored
    assert result.summary.skipped_infeasible > 0
    assert result.best is not None and result.best.costs["params"] <= bound
    record = api.experiment("small", db=db_path)
    assert record.config["constraints"] == [str(Constraint("params", "<=", bound))]


def test_measured_constraint_makes_trials_infeasible_never_best(db_path: Path) -> None:
    ev = NasBenchGraphEvaluator(dataset="cora")
    bound = _cora_quantile("params", 0.5)

    class MeasuredOnly(NasBenchGraphEvaluator):  # costs known only after evaluation
        def known_costs(self, arch, names):  # type: ignore[no-untyped-def]
            return {}

    from nasforge.experiment import Experiment
    from nasforge.store.sql import SqlStore

    evaluator = MeasuredOnly(dataset="cora")
    strategy = api.make_strategy("random", ev.space, objective=Objective("val_acc"), seed=0)
    with SqlStore(db_path) as store:
        exp = Experiment(
            name="post",
            space=ev.space,
            evaluator=evaluator,
            strategy=strategy,
            store=store,
            constraints=[Constraint("params", "<=", bound)],
        )
        summary = exp.run(api.Budget(60))
        stored = store.trials(exp.record.id)
    infeasible = [t for t in stored if t.status is Status.INFEASIBLE]
    complete = [t for t in stored if t.status is Status.COMPLETE]
    assert infeasible and complete
    assert all(
        t.costs["params"] > bound and "violates params<=" in str(t.error) for t in infeasible
    )
    assert all(t.costs["params"] <= bound for t in complete)
    best_acc = max(t.metrics["val_acc"] for t in complete)
    assert summary.best is not None and summary.best.status is Status.COMPLETE
    assert summary.best.metrics["val_acc"] == best_acc
    assert api.best("post", db=db_path) == summary.best
    assert all(t.status is Status.COMPLETE for t in api.top("post", 100, db=db_path))


def test_every_constraint_holds_for_training_searches(db_path: Path) -> None:
    """An MLP search on real data: params known before training filter candidates."""
    result = api.search(
        task="tabular:breast_cancer",
        strategy="random",
        budget=3,
        epochs=1,
        db=db_path,
        name="mlp-small",
        constraints=["params<=3000"],
    )
    stored = api.trials("mlp-small", db=db_path)
    assert len(stored) == 3 and all(t.costs["params"] <= 3000 for t in stored)
    assert result.summary.skipped_infeasible > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"constraints": ["accuracy>=0.5"]}, "constraint on unknown metric 'accuracy'"),
        ({"objectives": ["speed:max"]}, "objective on unknown metric 'speed'"),
        ({"constraints": ["params<=10"]}, "no architecture meets the constraints params<=10"),
        ({"objectives": ACC_LAT, "strategy": "local"}, "strategy 'local' optimises one"),
        ({"objectives": ["val_acc:max", "val_acc:min"]}, "each metric may be one objective"),
    ],
)
def test_bad_objectives_and_constraints_create_nothing(
    db_path: Path, kwargs: dict[str, object], message: str
) -> None:
    options = {"benchmark": "nas-bench-graph:cora", "budget": 5, **kwargs}
    with pytest.raises(ConfigError, match=message):
        api.search(db=db_path, **options)  # type: ignore[arg-type]
    assert not db_path.exists()


def test_impossible_constraint_error_gives_the_observed_range() -> None:
    with pytest.raises(ConfigError, match=r"params from \d"):
        api.plan(benchmark="nas-bench-graph:cora", constraints=["params<=10"])


# -- multi-objective ------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["random", "evolution", "optuna-nsga2", "optuna-tpe"])
def test_multi_objective_search_stores_a_true_front(db_path: Path, strategy: str) -> None:
    api.search(
        benchmark="nas-bench-graph:cora",
        strategy=strategy,
        budget=40,
        db=db_path,
        name="mo",
        objectives=ACC_LAT,
    )
    record = api.experiment("mo", db=db_path)
    assert record.config["objectives"] == ACC_LAT
    objectives = api.objectives_of(record)
    assert [o.direction for o in objectives] == [Direction.MAXIMIZE, Direction.MINIMIZE]
    stored = api.trials("mo", db=db_path)
    front = api.pareto("mo", db=db_path)
    scored = {
        t.number: [
            o.score(v) for o, v in zip(objectives, objective_values(t, objectives), strict=True)
        ]
        for t in stored
        if t.status is Status.COMPLETE
    }
    on_front = {t.number for t in front.front}
    for number, point in scored.items():  # on the front iff no stored trial dominates it
        dominated = any(dominates(q, point) for q in scored.values())
        if number in on_front:
            assert not dominated
        else:
            assert dominated or point in [scored[n] for n in on_front]
    assert front.hypervolume > 0
    assert front.reference == [0.0, max(t.costs["latency_ms"] for t in stored)]


def test_multi_objective_resume_keeps_objectives(db_path: Path) -> None:
    common = {"benchmark": "nas-bench-graph:cora", "strategy": "evolution", "name": "mo"}
    api.search(db=db_path, budget=20, objectives=ACC_LAT, **common)  # type: ignore[arg-type]
    again = api.search(db=db_path, budget=30, objectives=ACC_LAT, **common)  # type: ignore[arg-type]
    assert again.summary.resumed_trials == 20 and again.summary.archs == 30
    with pytest.raises(ConfigError, match="exists with other settings"):
        api.search(db=db_path, budget=30, **common)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="exists with other settings"):
        api.search(
            db=db_path,
            budget=30,
            objectives=ACC_LAT,
            constraints=["params<=1e6"],
            **common,  # type: ignore[arg-type]
        )


def test_multi_objective_evolution_beats_random_on_hypervolume(db_path: Path) -> None:
    """Across 5 seeds at 60 queries, MO evolution's mean hypervolume exceeds random's."""
    volumes: dict[str, list[float]] = {"random": [], "evolution": []}
    reference = {"latency_ms": _cora_quantile("latency_ms", 0.99)}
    for strategy, seed in [(s, k) for s in volumes for k in range(5)]:
        name = f"{strategy}-{seed}"
        api.search(
            benchmark="nas-bench-graph:cora",
            strategy=strategy,
            budget=60,
            seed=seed,
            db=db_path,
            name=name,
            objectives=ACC_LAT,
        )
        volumes[strategy].append(api.pareto(name, db=db_path, reference=reference).hypervolume)
    assert np.mean(volumes["evolution"]) > np.mean(volumes["random"])


def test_cli_objectives_constraints_and_pareto(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    code = main(
        [
            "search",
            "--benchmark",
            "nas-bench-graph:cora",
            "--strategy",
            "evolution",
            "--budget",
            "30",
            "--objective",
            "val_acc:max",
            "--objective",
            "latency_ms:min",
            "--constraint",
            "params<=2e6",
            "--name",
            "mo",
            "--db",
            str(db),
            "--no-progress",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "Pareto front of val_acc:max vs latency_ms:min" in printed
    assert main(["pareto", "--name", "mo", "--db", str(db), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["objectives"] == ACC_LAT
    assert payload["hypervolume"] > 0
    assert payload["front"] and all(t["costs"]["params"] <= 2e6 for t in payload["front"])
    assert main(["pareto", "--name", "mo", "--db", str(db), "--reference", "latency_ms=100"]) == 0
    shown = capsys.readouterr().out
    assert "reference point (val_acc=0, latency_ms=100)" in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--constraint", "params=<5"], "a constraint is METRIC OP NUMBER"),
        (["--constraint", "speed<=5"], "unknown metric 'speed'"),
        (["--constraint", "params<=10"], "no architecture meets the constraints"),
        (["--objective", "val_acc:up"], "objective direction must be one of"),
        (
            ["--objective", "val_acc", "--objective", "params:min", "--strategy", "bananas"],
            "multi-objective strategies: ",
        ),
    ],
)
def test_cli_bad_objectives_exit_2_and_store_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    db = tmp_path / "runs.db"
    base = ["search", "--benchmark", "nas-bench-graph:cora", "--budget", "5", "--db", str(db)]
    assert main([*base, "--name", "kept", "--no-progress"]) == 0
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT * FROM nasforge_trials ORDER BY id").fetchall()
    capsys.readouterr()
    code = _exit_code([*base, "--name", "other", "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    with sqlite3.connect(db) as conn:
        after = conn.execute("SELECT * FROM nasforge_trials ORDER BY id").fetchall()
        names = [r[0] for r in conn.execute("SELECT name FROM nasforge_experiments")]
    assert before == after and names == ["kept"]


def _exit_code(argv: list[str]) -> int:
    """``main``'s exit code, also when argparse exits on a usage error."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_pareto_of_single_objective_experiment_needs_objectives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    assert main(["search", "--benchmark", "nas-bench-graph:cora", "--budget", "20", "--name",
                 "one", "--db", str(db), "--no-progress"]) == 0  # fmt: skip
    assert main(["pareto", "--name", "one", "--db", str(db)]) == 2
    assert "a Pareto front needs two or more" in capsys.readouterr().err
    code = main(["pareto", "--name", "one", "--db", str(db), "--objective", "val_acc:max",
                 "--objective", "params:min"])  # fmt: skip
    assert code == 0
    assert "hypervolume" in capsys.readouterr().out


def test_predicted_latency_filters_before_training(db_path: Path) -> None:
    """nb201 cells on digits: a per-op latency table predicts latency before any training."""
    settings = api.plan(task="image:digits", strategy="random", budget=3, epochs=1)
    evaluator = settings.evaluator
    table = evaluator.latency_table()  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    predicted = [table.predict(settings.space.sample(rng)) for _ in range(100)]
    bound = float(np.quantile(predicted, 0.4))
    result = api.search(
        task="image:digits",
        strategy="random",
        budget=3,
        epochs=1,
        db=db_path,
        name="fast-cells",
        constraints=[f"latency_pred_ms<={bound}"],
    )
    stored = api.trials("fast-cells", db=db_path)
    assert len(stored) == 3 and result.summary.skipped_infeasible > 0
    for trial in stored:  # the prediction is stored beside the measured latency
        assert trial.costs["latency_pred_ms"] <= bound and trial.costs["latency_ms"] > 0
    with pytest.raises(ConfigError, match="unknown metric 'latency_pred_ms'"):
        api.plan(task="tabular:wine", constraints=["latency_pred_ms<=1"])


def test_onnxruntime_latency_backend_measures_trained_models(db_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    api.search(
        task="tabular:wine",
        strategy="random",
        budget=2,
        epochs=1,
        db=db_path,
        name="ort",
        latency_backend="onnxruntime",
        objectives=["val_acc:max", "latency_ms:min"],
    )
    stored = api.trials("ort", db=db_path)
    assert len(stored) == 2 and all(t.costs["latency_ms"] > 0 for t in stored)
    record = api.experiment("ort", db=db_path)
    assert record.config["evaluator"]["latency_backend"] == "onnxruntime"
    with pytest.raises(ConfigError, match="unknown latency backend 'tensorrt'"):
        api.plan(task="tabular:wine", latency_backend="tensorrt")
    with pytest.raises(ConfigError, match="apply to --task searches only"):
        api.plan(benchmark="nas-bench-graph:cora", latency_backend="onnxruntime")
