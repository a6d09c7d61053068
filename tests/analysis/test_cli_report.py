"""`rsng pareto` and `rsng report` on a real smoke sweep; bad input exits 2 with one line."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import rsng.results as R
from rsng.cli import main


def dominates(a, b) -> bool:
    return a[0] <= b[0] and a[1] <= b[1] and (a[0] < b[0] or a[1] < b[1])


def test_pareto_json_front_is_exactly_the_non_dominated_runs(smoke_sweep_dir, smoke_n, tmp_path):
    plot = tmp_path / "front.png"
    r = subprocess.run(
        [sys.executable, "-m", "rsng.cli", "pareto", str(smoke_sweep_dir), "--json", "--plot", str(plot)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)  # exactly one JSON object on stdout
    traj = R.load(smoke_sweep_dir, with_steps=False).trajectories
    assert out["n_rows"] == len(traj) == smoke_n and out["by"] == ["problem"]
    on = {row["trial_id"] for row in out["front"]}
    assert on
    for _problem, g in traj.groupby("problem", observed=True):
        ok = g[g.status == "ok"]
        pts = {t: (w, e) for t, w, e in zip(ok.trial_id, ok.wall_s, ok.rel_l2)}
        for t, p in pts.items():
            if t in on:
                assert not any(dominates(q, p) for q in pts.values()), (t, p)
            else:
                assert any(dominates(pts[f], p) for f in on if f in pts), (t, p)
    for row in out["front"]:
        assert row["wall_s"] == pytest.approx(traj.set_index("trial_id").loc[row["trial_id"], "wall_s"], rel=1e-12)
    assert out["excluded"] == {
        "diverged": int((traj.status == "diverged").sum()),
        "failed": int((traj.status == "failed").sum()),
        "non-finite": 0,
        "stopped": int((traj.status == "stopped").sum()),
    }
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 1024


def test_pareto_table_lists_the_front(smoke_sweep_dir, smoke_n, capsys):
    assert main(["pareto", str(smoke_sweep_dir), "--by", "problem,sampler"]) == 0
    text = capsys.readouterr().out
    traj = R.load(smoke_sweep_dir, with_steps=False).trajectories
    listed = {t for t in traj.trial_id if t in text}
    expected = set()
    for _, g in traj.groupby(["problem", "sampler"], observed=True):
        pts = {t: (w, e) for t, w, e in zip(g.trial_id, g.wall_s, g.rel_l2) if math.isfinite(e)}
        expected |= {t for t, p in pts.items() if not any(dominates(q, p) for q in pts.values())}
    assert listed == expected and len(listed) >= traj.groupby(["problem", "sampler"]).ngroups  # ≥ 1 per group
    assert re.search(
        rf"\d+ on the front per problem, sampler, \d+ dominated, of {smoke_n} eligible runs; "
        r"excluded before the front: 0 diverged, 0 failed, 0 non-finite",
        text,
    )
    assert main(["pareto", str(smoke_sweep_dir), "--aggregate", "--x", "steps * s**2", "--by", "none"]) == 0
    text = capsys.readouterr().out
    assert "cost_mean" in text and "rel_l2_mean" in text and "eligible configurations" in text


@pytest.mark.parametrize(
    "args, flag",
    [
        (["pareto", "{missing}"], "sweep_dir"),
        (["pareto", "{sweep}", "--x", "nope"], "--x"),
        (["pareto", "{sweep}", "--y", "rel_l2 +"], "--y"),
        (["pareto", "{sweep}", "--y", "sampler"], "--y"),
        (["pareto", "{sweep}", "--by", "problem,nope"], "--by"),
        (["pareto", "{sweep}", "--aggregate", "--x", "nope"], "--x"),
        (["pareto", "{sweep}", "--plot", "{missing}/f.png"], "--plot"),
        (["pareto", "{sweep}", "--plot", "{tmp}/f.txt"], "--plot"),
        (["report", "{missing}", "--out", "{tmp}/r"], "sweep_dir"),
        (["report", "{sweep}", "--out", "{file}"], "--out"),
    ],
)
def test_bad_input_is_one_line_naming_the_option_and_exit_2(smoke_sweep_dir, tmp_path, capsys, args, flag):
    (tmp_path / "afile").write_text("x")
    subs = {
        "sweep": str(smoke_sweep_dir),
        "missing": str(tmp_path / "missing"),
        "tmp": str(tmp_path),
        "file": str(tmp_path / "afile"),
    }
    argv = [a.format(**subs) for a in args]
    assert main(argv) == 2
    cap = capsys.readouterr()
    err = cap.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"rsng {argv[0]}: error: {flag}:"), cap.err
    assert cap.out == ""


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[str] = []
        self.imgs: list[str] = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href", "data", "srcset", "poster") and v is not None:
                self.refs.append(v)
                if tag == "img":
                    self.imgs.append(v)


def test_report_references_only_files_it_wrote(smoke_sweep_dir, tmp_path):
    out = tmp_path / "report"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsng.cli",
            "report",
            str(smoke_sweep_dir),
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    index = Path(r.stdout.strip())
    assert index == out / "index.html" and index.is_file()
    page = index.read_text(encoding="utf-8")
    p = _Refs()
    p.feed(page)
    written = {f.name for f in out.iterdir()}
    assert p.refs and set(p.refs) <= written, set(p.refs) - written  # plain names of files in the folder
    assert not re.search(r"""(?:url\(|@import|https?://)""", page)  # nothing external, no CSS fetches
    pngs = sorted(out.glob("*.png"))
    assert {f.name for f in pngs} == set(p.imgs) and {"pareto.png", "error_vs_s.png", "time_allen_cahn.png"} <= set(
        p.imgs
    )
    for f in pngs:
        data = f.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1024, f
    # the sections the issue asks for, with this sweep's facts
    for text in (
        "Failures",
        "Accuracy versus cost",
        "Error versus sparsity s",
        "over time",
        "Sweep configuration and versions",
        "sparsity-smoke",
        "versions.rsng_version",
        "spectral-etdrk4",
        "paper",
    ):
        assert text in page, text
    assert "every trajectory finished with status ok" in page  # the smoke sweep's failure table is empty


def test_report_of_a_sweep_with_failures_shows_them(synth_dir, tmp_path):
    from rsng.analysis import write_report

    index = write_report(synth_dir, tmp_path / "rep", reference=False)
    page = index.read_text(encoding="utf-8")
    assert "2 of 38 trajectories did not finish ok" in page
    assert "RuntimeError: boom" in page and "diverged" in page and 'href="failures.csv"' in page
    failures = (tmp_path / "rep" / "failures.csv").read_text()
    assert "allen_cahn-uniform-s50-seed3" in failures and "burgers-column_norm-s800-seed3" in failures
    assert "1 diverged" in page and "1 failed" in page
