"""A run field and a sampler added here, in the test — not in the package — reach config validation,
the command line, the sweep grid, the Parquet row (through the real trial code) and MLflow."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import jax.numpy as jnp
import pytest

from rsng.core import record, registry
from rsng.core.samplers import ColumnSampler


class FirstColumns(ColumnSampler):
    """The first s columns, every step (deterministic)."""

    name = "first_columns"

    def indices(self, key, s, p, J, rcond):
        return jnp.arange(s, dtype=jnp.int32)


LABEL = record.Field(
    "label", "str", "plain", "a free label of the run", choices=("plain", "fancy"), column="string", absent="plain"
)


@pytest.fixture
def extended():
    registry.register_sampler("first_columns", FirstColumns)
    record.register_field(LABEL)
    try:
        yield
    finally:
        record.unregister_field("label")
        registry.unregister_sampler("first_columns")


def test_config_and_grid_accept_them(extended):
    from rsng.core.config import ConfigError, RunConfig, resolve
    from rsng.service.spec import SweepSpec

    cfg = resolve("smoke", problem="allen_cahn", sampler="first_columns", label="fancy")
    assert cfg.label == "fancy" and cfg.sampler == "first_columns"
    assert resolve("smoke", problem="allen_cahn").label == "plain"  # the declared default
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="label: unknown value 'odd'; accepted: plain, fancy"):
        resolve("smoke", problem="allen_cahn", label="odd")
    trials = SweepSpec("ext", grid={"label": ["plain", "fancy"]}, fixed={"problem": "heat", "preset": "smoke"}).expand()
    assert sorted(t.config.label for t in trials) == ["fancy", "plain"]
    assert trials[0].trial_id != trials[1].trial_id


def test_command_line_has_them(extended, capsys):
    from rsng.cli import main

    with contextlib.redirect_stdout(io.StringIO()) as out, pytest.raises(SystemExit):
        main(["solve", "--help"])
    assert "--label" in out.getvalue() and "first_columns" in out.getvalue()
    assert main(["solve", "--problem", "allen_cahn", "--label", "odd"]) == 2
    assert "--label: unknown value 'odd'; accepted: plain, fancy" in capsys.readouterr().err


def test_a_trajectory_reaches_parquet_and_mlflow(extended, tmp_path, template_db):
    from mlflow import MlflowClient

    from rsng.core.config import resolve
    from rsng.results import load
    from rsng.service.trial import run_trajectory
    from rsng.service.work import Member, WorkItem
    from rsng.tracking import sync

    cfg = resolve("smoke", problem="allen_cahn", sampler="first_columns", label="fancy", t_end=4 * 5e-3)
    sweep_dir = tmp_path / "results" / "ext"
    rows = run_trajectory(
        WorkItem(
            "t1",
            (Member("t1", cfg),),
            sweep="ext",
            sweep_dir=str(sweep_dir),
            report_steps=200,
            cpus=1,
            gpus=0,
            cache_dir=str(tmp_path / "cache"),
        )
    )
    assert rows[0]["status"] == "ok", rows[0]["error_message"]
    df = load(sweep_dir).trajectories
    assert df.loc[0, "label"] == "fancy" and df.loc[0, "sampler"] == "first_columns" and df.loc[0, "s"] == 50

    db = tmp_path / "mlflow.db"
    shutil.copyfile(template_db, db)
    uri = f"sqlite:///{db}"
    assert sync(sweep_dir, uri, warn=print).ok
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("rsng/ext").experiment_id])
    child = next(r for r in runs if r.data.tags.get("rsng.trial_id") == "t1")
    assert child.data.params["label"] == "fancy" and child.data.params["sampler"] == "first_columns"

    # a sweep folder written before the field existed stays readable: the declared ``absent`` value
    record.unregister_field("label")
    old_dir = tmp_path / "results" / "old"
    run_trajectory(
        WorkItem(
            "t0",
            (Member("t0", resolve("smoke", problem="allen_cahn", t_end=2 * 5e-3)),),
            sweep="old",
            sweep_dir=str(old_dir),
            report_steps=200,
            cpus=1,
            gpus=0,
            cache_dir=str(tmp_path / "cache"),
        )
    )
    record.register_field(LABEL)
    assert load(old_dir).trajectories.loc[0, "label"] == "plain"


def test_json_summary_names_the_field(extended, tmp_path):
    from rsng.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(
            [
                "solve",
                "--problem",
                "allen_cahn",
                "--preset",
                "smoke",
                "--t-end",
                "0.01",
                "--label",
                "fancy",
                "--sampler",
                "first_columns",
                "--json",
                "--quiet",
                "--cache-dir",
                str(tmp_path),
            ]
        )
    assert code == 0
    summary = json.loads(buf.getvalue())
    assert summary["label"] == "fancy" and summary["sampler"] == "first_columns"


@pytest.mark.slow  # an embedded Ray and two trials: ≈ 1 min idle, several under load
def test_a_ray_trial_installs_the_registrations_of_the_driver(extended, tmp_path, template_db):
    """Registered here, in the test process (the sweep's driver), not in any module a Ray worker
    imports: real Ray trials (two, one after the other: Tune reuses the worker) write the field into their rows and
    step with the sampler."""
    import os

    import ray

    import rsng

    db = tmp_path / "mlflow.db"
    shutil.copyfile(template_db, db)
    env = dict(os.environ)  # the embedded Ray's token and Tune's settings stay in this test
    try:
        out = rsng.sweep(
            {
                "name": "ext-ray",
                "grid": {"label": ["fancy"], "sampler": ["first_columns", "uniform"]},
                "fixed": {"problem": "allen_cahn", "preset": "smoke", "t_end": 2 * 5e-3},
            },
            storage=str(tmp_path / "results"),
            ray_address="local",
            max_concurrent=1,
            mlflow_uri=f"sqlite:///{db}",
            cache_dir=str(tmp_path / "cache"),
            log=lambda m: None,
        )
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(env)
    df = out.trajectories.sort_values("sampler")
    assert (df["status"] == "ok").all(), df["error_message"].tolist()
    assert df["sampler"].tolist() == ["first_columns", "uniform"] and (df["label"] == "fancy").all()
    # the trials ran in Ray worker processes, not here
    trial_pids = {
        json.loads(line)["pid"]
        for f in (tmp_path / "results" / "ext-ray" / "_ray").rglob("result.json")
        for line in f.read_text().splitlines()
        if line.strip()
    }
    assert trial_pids and os.getpid() not in trial_pids
