"""benchmarks/theta0_screen.py: its reparametrisations leave u unchanged, and the screen marches and records."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rsng.core._x64  # noqa: F401  (float64 for the comparison of u)
from rsng.core.network import Network

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "theta0_screen.py"


@pytest.fixture(scope="module")
def screen(script_module):
    return script_module(SCRIPT)


def test_rescale_is_an_exact_symmetry(screen):
    net = Network(1, (2.0,), 7, 5)
    rng = np.random.default_rng(0)
    theta = np.asarray(net.init(jax.random.PRNGKey(3), jnp.float64))
    x = jnp.asarray(rng.uniform(-1, 1, (64, 1)))
    u = np.asarray(net.apply_batch(jnp.asarray(theta), x))
    n_act = net.depth - 1
    factors = {k: rng.uniform(0.3, 3.0, n_act) for k in ("cin", "dout", "e")}
    moved = screen.rescale(net, theta, **factors)
    assert np.max(np.abs(moved - theta)) > 0.1  # θ itself moves …
    u_moved = np.asarray(net.apply_batch(jnp.asarray(moved), x))
    np.testing.assert_allclose(u_moved, u, rtol=0, atol=1e-12 * np.max(np.abs(u)))  # … u does not
    # one factor at a time changes u if the compensating half is left out (the test can fail)
    broken = theta.copy()
    o, _ = net.offsets["embed/a"]
    broken[o : o + 7] *= 2.0
    assert np.max(np.abs(np.asarray(net.apply_batch(jnp.asarray(broken), x)) - u)) > 1e-3
    np.testing.assert_array_equal(screen.rescale(net, theta), theta)


def test_bad_factors_and_specs_are_named(screen):
    net = Network(1, (2.0,), 5, 4)
    theta = np.asarray(net.init(jax.random.PRNGKey(0), jnp.float64))
    with pytest.raises(ValueError, match="dout: 3 finite non-zero factors"):
        screen.rescale(net, theta, dout=[1.0, 0.0, 1.0])
    with pytest.raises(SystemExit, match="accepted keys: cin, dout, e"):
        screen.parse_variant("x:scale=2", 3)
    with pytest.raises(SystemExit, match="1 or 3 factors"):
        screen.parse_variant("x:cin=1/2", 3)
    assert screen.parse_variant("w:cin=1/0.5/0.5;e=2", 3) == (
        "w",
        {"cin": [1.0, 0.5, 0.5], "dout": [1.0, 1.0, 1.0], "e": [2.0, 2.0, 2.0]},
    )
    assert screen.parse_seeds("5-7") == [5, 6, 7] and screen.parse_seeds("0,3") == [0, 3]
    with pytest.raises(SystemExit, match="--seeds"):
        screen.parse_seeds("1,1")


def test_screen_marches_each_variant_and_appends_rows(screen, tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    argv = ["--problem", "burgers", "--preset", "smoke", "--t-end", "0.02", "--seeds", "0-1", "--out", str(out)]
    with pytest.raises(SystemExit, match="--plot: a march draws a comparison of two or more"):
        screen.main([*argv, "--plot", str(tmp_path / "one.png")])  # refused before any fit or march
    assert not out.exists()
    png = tmp_path / "two.png"
    screen.main([*argv, "--variant", "base:", "--variant", "mixed:cin=2/0.5;dout=3;e=0.5", "--plot", str(png)])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["variant"] for r in rows] == ["base", "mixed"]
    for r in rows:
        assert r["seeds"] == [0, 1] and r["status"] == ["ok", "ok"] and r["rcond"] == 1e-4
        assert np.all(np.isfinite(r["errors"])) and r["mean"] == pytest.approx(np.mean(r["errors"]))
        assert r["e_t0.1"] is None  # past t_end
        assert r["du_max"] < 1e-12 and r["mean_kept_rank"] > 0
        assert set(r["j_normsq_by_group"]) == {"embedding", "rational", "dense W", "dense b", "out/w", "out/b"}
    # the same θ(0) up to an exact symmetry: the same function at t = 0, a different Jacobian
    assert rows[1]["j0_sigma_max"] != pytest.approx(rows[0]["j0_sigma_max"], rel=1e-3)
    printed = capsys.readouterr().out
    assert "mixed" in printed and "paired" in printed  # two variants: paired against the first
    assert png.stat().st_size > 0


ROWS = SCRIPT.parents[0] / "results" / "initial-fit-heldout-2026-12-04b-epyc.jsonl"


def test_compare_pairs_each_row_with_its_groups_baseline(screen):
    rows = [json.loads(line) for line in ROWS.read_text().splitlines()]
    table = screen.compare_rows(rows)
    assert len(table) == len(rows)
    by_group = {}
    for r, c in zip(rows, table, strict=True):
        by_group.setdefault(c["group"], []).append((r, c))
    for members in by_group.values():
        bases = [r for r, c in members if c["is_baseline"]]
        assert len(bases) == 1 and bases[0]["variant"] == "base"  # the group's first base row
        base = bases[0]
        for r, c in members:
            assert r["seeds"] == base["seeds"] and r["t_end"] == base["t_end"]
            d = np.log(np.asarray(r["errors"]) / np.asarray(base["errors"]))
            assert c["paired"] == pytest.approx(d.mean(), abs=1e-12) and c["n"] == len(d)
            if len(d) > 1:
                assert c["se"] == pytest.approx(d.std(ddof=1) / np.sqrt(len(d)))
    # a failed seed (nan) is left out of the pairing and counted
    broken = [dict(r) for r in rows]
    last = broken[-1]
    last["errors"] = [float("nan"), *last["errors"][1:]]
    assert screen.compare_rows(broken)[-1]["n"] == len(last["errors"]) - 1
    last["errors"] = [None, *last["errors"][1:]]  # as a row read back from JSON may hold it
    assert screen.compare_rows(broken)[-1]["n"] == len(last["errors"]) - 1
    # --baseline picks another row; a group without a match pairs nothing
    other = screen.compare_rows(rows, baseline="embed=5 (init_seed 0) base")
    assert sum(c["is_baseline"] for c in other) == 2 and all(c["n"] == 0 for c in other if c["group"][4] == 0.2)

    # docs/initial-fit.md's table of new fits quotes these rows' paired column, in the file's order
    lines = (SCRIPT.parents[1] / "docs" / "initial-fit.md").read_text().splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| θ(0) | t = 0 error |") and "paired" in line)
    quoted = []
    for line in lines[head + 2 :]:
        if not line.startswith("|"):
            break
        quoted.append(line.strip("|").split(" | ")[-1].strip().replace("−", "-"))
    computed = [c for c in table if len(c["group"][5]) == 20]
    assert len(quoted) == len(computed)
    for q, c in zip(quoted, computed, strict=True):
        assert q == ("0" if c["is_baseline"] else f"{c['paired']:+.3f} ± {c['se']:.3f}"), (q, c["label"])


def test_compare_cli(screen, capsys, tmp_path):
    png = tmp_path / "paired.png"
    screen.main(["--compare", str(ROWS), "--plot", str(png)])
    printed = capsys.readouterr().out
    assert "paired" in printed and "adam-lm,lr=1e-3,embed=5 (init_seed 0) base" in printed
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"# plot: {png}" in printed
    one = tmp_path / "one.jsonl"
    one.write_text(ROWS.read_text().splitlines()[0] + "\n")  # a group of one row: nothing to draw
    with pytest.raises(SystemExit, match="no group of two or more rows"):
        screen.main(["--compare", str(one), "--plot", str(tmp_path / "none.png")])
    with pytest.raises(SystemExit, match="--compare: rows written by --out expected in .*missing"):
        screen.main(["--compare", str(ROWS), str(ROWS.with_suffix(".missing"))])
    # rows from several files pair as one file holding them in the order given: a baseline in the first file
    # pairs with a candidate in the second
    lines = ROWS.read_text().splitlines()
    group = [json.loads(line) for line in lines]
    last = group[-1]
    mates = [i for i, r in enumerate(group) if (r["seeds"], r["t_end"]) == (last["seeds"], last["t_end"])]
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    capsys.readouterr()  # what the calls above printed
    first.write_text("".join(lines[i] + "\n" for i in mates[:-1]))
    second.write_text(lines[mates[-1]] + "\n")
    screen.main(["--compare", str(first), str(second)])
    split = capsys.readouterr().out
    whole = tmp_path / "whole.jsonl"
    whole.write_text("".join(lines[i] + "\n" for i in mates))
    screen.main(["--compare", str(whole)])
    assert split == capsys.readouterr().out and split.count("\n") == len(mates) + 2
    with pytest.raises(SystemExit):
        screen.main(["--t-end", "1"])  # no --problem and no --compare
    assert "--problem is required" in capsys.readouterr().err


def test_subset_means_pool_the_seeds_and_count_the_subsets(screen, capsys):
    from itertools import combinations

    def row(label, seeds, errors, t_end=4.0):
        return dict(
            theta0=label, variant="base", problem="burgers", preset="fast", rcond=1e-4, precision="f32",
            t_end=t_end, seeds=seeds, errors=errors,
        )  # fmt: skip

    rows = [
        row("a", [0, 1, 2], [1.0, 2.0, 4.0]),
        row("a", [2, 3], [9.0, 3.0]),  # seed 2 again: the first row's error stays
        row("a", [4], [None]),  # a failed seed is left out
        row("b", [0, 1], [1.0, 1.0]),
        row("a", [0, 1], [5.0, 5.0], t_end=0.3),  # another setting, another pool
    ]
    a, b, short = screen.subset_means(rows, 2, target=2.5)
    errors = [1.0, 2.0, 4.0, 3.0]
    means = [np.mean(c) for c in combinations(errors, 2)]  # 1.5 2.5 2 3 2.5 3.5
    assert a["seeds"] == [0, 1, 2, 3] and a["mean"] == pytest.approx(2.5) and a["subsets"] == 6
    assert a["sd"] == pytest.approx(np.std(errors, ddof=1)) and a["median"] == pytest.approx(np.median(means))
    assert a["smallest"] == 1.5 and a["share"] == pytest.approx(4 / 6) and a["q90"] == pytest.approx(3.25)
    assert b["subsets"] == 1 and b["share"] == 1.0 and short["setting"][4] == 0.3 and short["seeds"] == [0, 1]
    assert screen.subset_means(rows, 5, target=1.0)[0]["subsets"] == 0  # fewer seeds than asked for

    # docs/initial-fit.md's table of five-seed means is this on the rows it names
    files = [ROWS.with_name(f"initial-fit-heldout-2026-12-05{x}-epyc.jsonl") for x in "cef"]
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    table = {c["label"]: c for c in screen.subset_means(rows, 5, target=1e-4)}
    lines = (SCRIPT.parents[1] / "docs" / "initial-fit.md").read_text().splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| θ(0) | seeds | mean | s.d. | five-seed"))
    quoted = [line.strip("|").split(" | ") for line in lines[head + 2 : head + 4]]
    labels = ["adam-lm,lr=1e-3,embed=3,points=2000 (init_seed 9) base", "adam-lm,lr=1e-3,embed=3 (init_seed 9) base"]

    def e(v, digits=3):  # the docs' style: 9.236e-5
        return f"{v:.{digits}e}".replace("e-0", "e-")

    for q, label in zip(quoted, labels, strict=True):
        c = table[label]
        assert c["subsets"] == 53130
        share = f"{c['share']:.1%}".replace("%", " %")
        assert [x.strip("* ") for x in q[1:]] == [
            "25", e(c["mean"]), e(c["sd"], 2), e(c["median"]), e(c["q90"]), e(c["smallest"]), share.strip()
        ], (q, label)  # fmt: skip
    screen.main(["--compare", *map(str, files), "--subsets", "5", "--target", "1e-4"])
    assert "53130" in capsys.readouterr().out
    for bad in (["--subsets", "5"], ["--target", "1e-4"], ["--subsets", "0", "--target", "1"]):
        with pytest.raises(SystemExit):
            screen.main(["--compare", str(files[0]), *bad])
