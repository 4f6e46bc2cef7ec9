"""The probzoo command: list, errors with exit code 2, compare --json, fit and the tour's index.html."""

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from probzoo.cli import format_metrics, format_table, main, write_index
from probzoo.glossary import undocumented
from probzoo.zoo import entries

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "probzoo", *args], capture_output=True, text=True, timeout=timeout)


def test_list_shows_the_zoo(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("mdn", "ukr", "clustering_vae", "rbm"):
        assert re.search(rf"^{name}\s", out, re.M), out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "gp", "--method", "map"], "unknown model 'gp'; valid models: clustering_vae, mdn, rbm, ukr"),
        (["fit", "mdn", "--method", "mle"], "unknown method mle for mdn; valid methods: map, meanfield, nuts"),
        (["compare", "mdn", "--methods", "map,bogus"], "unknown method bogus for mdn; valid methods"),
        (["compare", "ukr", "--methods", "map", "--data", "moons"], "unknown data set 'moons' for ukr"),
        (["fit", "mdn", "--method", "map", "--set", "bogus=1"], "--set: unknown option 'bogus' for mdn; valid"),
        (["compare", "mdn", "--methods", "map", "--set", "epochs=2"], "--set: unknown option 'epochs' for mdn"),
        (["fit", "mdn", "--method", "map", "--set", "num_steps=ten"],
         "--set num_steps=ten: num_steps: expected an integer, got str 'ten'"),
        (["fit", "rbm", "--method", "cd", "--set", "k=0"], "--set k=0: k: must be >= 1, got 0"),
        (["fit", "mdn", "--method", "map", "--seed", "-1"], "argument --seed: must lie in [0, 4294967295], got -1"),
        (["fit", "mdn", "--method", "map", "--seed", str(2**64)], "argument --seed: must lie in [0, 4294967295]"),
        (["compare", "mdn", "--methods", "map", "--seed", "x"], "argument --seed: expected an integer, got 'x'"),
        (["compare", "mdn", "--methods"], "argument --methods: expected one argument"),
        (["tour", "--jobs", "0"], "argument --jobs: must be at least 1, got 0"),
        (["tour", "--jobs", "two"], "argument --jobs: expected an integer, got 'two'"),
        (["fit", "mdn", "--model", "hiden=3"], "--model: unknown option 'hiden' for mdn; valid options: n_components, "
                                                "hidden"),
        (["fit", "mdn", "--model", "hidden"], "--model expects key=value, got 'hidden'"),
        (["fit", "mdn", "--model", "hidden=(0,)"], "--model hidden=(0,): mdn / map: hidden:"),
        # NUTS on the default 64-64 network is refused up front, with the way to give a small network
        (["compare", "mdn", "--methods", "map,nuts"],
         "methods: nuts: hidden: NUTS over the 4,678 weights of a [64, 64] network is too slow to mix"),
        (["compare", "mdn", "--methods", "map,nuts"], "(give model options with --model KEY=VALUE, or for one "
                                                      "method only METHOD[KEY=VALUE])"),
        (["fit", "ukr", "--model", "latent_dim=3"], "--model latent_dim=3: ukr / map: latent_dim: must be smaller "
                                                    "than the data dimension D = 3"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_compare_mdn_json(tmp_path, capsys):
    # in-process (the console script itself is test_python_dash_m_is_the_same_command); a small budget
    argv = ["compare", "mdn", "--methods", "map,meanfield", "--json", "--out", str(tmp_path),
            "--set", "n=500", "--set", "num_steps=40"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in rows] == ["map", "meanfield"]
    for r in rows:
        assert r["lpd"] is not None and r["wall_s"] > 0
        assert not undocumented(r), undocumented(r)  # every column of the comparison is in the glossary


def test_fit_writes_fit_summary_and_figures(tmp_path):
    out = tmp_path / "ukr"
    # no --method: the model's first method (map); a model option from the command line
    assert main(["fit", "ukr", "--out", str(out), "--quiet", "--set", "num_steps=300", "--model", "bandwidth=0.5"]) == 0
    assert (out / "fit" / "meta.json").is_file() and (out / "summary.txt").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "map" and metrics["seconds"] > 0
    import probzoo as pz

    assert pz.load(out / "fit").model.get_config()["bandwidth"] == 0.5
    pngs = list(out.rglob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == PNG_MAGIC for p in pngs)


def test_fit_reports_the_fits_diagnostics_with_their_reading(tmp_path):
    """A variational fit's row carries its k-hat; a value the glossary judges doubtful or bad is explained."""
    out = tmp_path / "mdn"
    assert main(["fit", "mdn", "--method", "meanfield", "--out", str(out), "--quiet", "--model", "hidden=(4,)",
                 "--set", "num_steps=200"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    import probzoo as pz

    assert metrics["khat"] == pytest.approx(pz.load(out / "fit").diagnostics()["khat"])
    summary = (out / "summary.txt").read_text()
    # a mean-field q of a network's weights is far from their multimodal posterior: k-hat 3-20 in practice
    assert metrics["khat"] > 0.7
    assert "bad: meanfield khat = " in summary and "misses posterior mass" in summary


def test_tour_runs_models_in_parallel_processes(tmp_path, monkeypatch):
    # the runs are the parent's (a patched budget reaches the workers); each model's section comes back whole
    monkeypatch.setattr(entries()["ukr"], "tour_runs", [("map", {"num_steps": 50})])
    monkeypatch.setattr(entries()["mdn"], "tour_runs", [("map", {"num_steps": 50, "batch_size": 500})])
    assert main(["tour", "--models", "ukr,mdn", "--jobs", "2", "--out", str(tmp_path), "--quiet"]) == 0
    index = (tmp_path / "index.html").read_text()
    assert "<h3>ukr / map</h3>" in index and "<h3>mdn / map</h3>" in index
    assert "ukr / nuts" not in index and "mdn / meanfield" not in index  # the patched runs, not the registry's
    assert index.index("<h3>ukr / map</h3>") < index.index("<h3>mdn / map</h3>")  # in the order asked for
    links = re.findall(r"<img src='([^']+)'", index)
    assert {link.split("/")[0] for link in links} == {"ukr", "mdn"}
    assert all((tmp_path / link).read_bytes()[:8] == PNG_MAGIC for link in links)


def test_tour_index_links_valid_pngs(tmp_path, monkeypatch, capsys):
    # the tour's own budgets are checked in test_every_entry_is_complete; here the smallest that draw figures
    monkeypatch.setattr(entries()["ukr"], "tour_runs", [
        ("map", {"num_steps": 100}), ("nuts", {"num_warmup": 10, "num_samples": 10, "max_tree_depth": 3,
                                               "map_steps": 50})])
    assert main(["tour", "--models", "ukr", "--out", str(tmp_path), "--quiet"]) == 0
    printed = capsys.readouterr().out
    # within 100 columns, but for the line that names the (long, temporary) output folder
    assert max(len(line) for line in printed.splitlines() if str(tmp_path) not in line) <= 100, printed
    index = (tmp_path / "index.html").read_text()
    links = re.findall(r"<img src='([^']+)'", index)
    assert links, "the tour's index.html shows no figures"
    for link in links:
        data = (tmp_path / link).read_bytes()
        assert data[:8] == PNG_MAGIC, link
    # every figure written is shown, under its method's heading
    assert {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")} == set(links)
    assert "<h3>ukr / map</h3>" in index and "<h3>ukr / nuts</h3>" in index and "budget" in index
    # the introduction says how every fit judges itself: k-hat for q, r_hat / ESS / ESS per gradient for MCMC
    intro = index.split("<h2>")[0]
    assert intro.count("<p>") == 2 and "PSIS k-hat" in intro and "ESS per gradient" in intro and "r_hat" in intro
    # every quantity in the tables is in the glossary, and the glossary says which way is better
    tables, glossary = index.split("<h2>Glossary</h2>")
    quantities = set(re.findall(r"<tr><td>([a-z_0-9]+)</td>", tables))
    assert quantities >= {"seconds", "reconstruction_error", "trustworthiness", "r_hat_recon_error"}
    assert quantities == set(re.findall(r"<tr><td>([a-z_0-9]+)</td>", glossary))
    assert not undocumented(quantities) and "\u2191 higher" in tables and "\u2193 lower" in tables


def test_compare_checks_every_method_before_fitting_any(monkeypatch, capsys):
    from probzoo.models.mdn import MDN

    calls, real_fit = [], MDN.fit
    monkeypatch.setattr(MDN, "fit", functools.wraps(real_fit)(lambda self, *a, **k: calls.append(k["method"])))
    assert main(["compare", "mdn", "--methods", "map,meanfield,nuts", "--set", "n=200"]) == 2
    assert calls == []  # refused before the first fit, not after two
    assert "nuts: hidden: NUTS over the 4,678 weights" in capsys.readouterr().err


def test_compare_keeps_and_prints_the_finished_rows_when_a_later_method_fails(tmp_path, monkeypatch, capsys):
    from probzoo.models.mdn import MDN

    real_fit, hiddens = MDN.fit, []

    @functools.wraps(real_fit)
    def fit(self, *args, method="map", **kwargs):
        hiddens.append((method, tuple(self.hidden)))
        if method == "meanfield":
            raise RuntimeError("out of memory")
        return real_fit(self, *args, method=method, **kwargs)

    monkeypatch.setattr(MDN, "fit", fit)
    # a small network for NUTS only, as a method's model option; map finishes, meanfield fails, nuts never runs
    argv = ["compare", "mdn", "--methods", "map,meanfield,nuts[hidden=(4,)]", "--json", "--out", str(tmp_path),
            "--set", "n=300", "--set", "num_steps=30", "--model", "hidden=(3,)"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [r["method"] for r in rows] == ["map"] and np.isfinite(rows[0]["lpd"])
    assert [(m, h) for m, h in hiddens] == [("map", (3,)), ("meanfield", (3,))]  # --model reached every method
    assert "meanfield failed after 1 finished: RuntimeError: out of memory" in captured.err
    assert (tmp_path / "mdn_compare.png").read_bytes()[:8] == PNG_MAGIC


def test_tour_checks_every_run_first_and_reports_a_failed_one_without_losing_the_others(tmp_path, monkeypatch,
                                                                                      capsys):
    from probzoo.models.ukr import UKR

    entry = entries()["ukr"]
    monkeypatch.setattr(entry, "tour_runs", [("map", {"num_steps": 20}), ("map", {"epochs": 3})])
    real_fit, calls = UKR.fit, []

    @functools.wraps(real_fit)  # the same signature: the check reads the options fit takes from it
    def fit(self, *args, method="map", **kwargs):
        calls.append(method)
        if method == "nuts":
            raise RuntimeError("the chains diverged")
        return real_fit(self, *args, method=method, **kwargs)

    monkeypatch.setattr(UKR, "fit", fit)
    assert main(["tour", "--models", "ukr", "--out", str(tmp_path), "--quiet"]) == 2
    assert calls == []  # refused before the first run trained
    assert "ukr / map: epochs: not an option of UKR.fit" in capsys.readouterr().err

    monkeypatch.setattr(entry, "tour_runs", [("map", {"num_steps": 20}), ("nuts", {"num_warmup": 5})])
    assert main(["tour", "--models", "ukr", "--out", str(tmp_path), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert calls == ["map", "nuts"] and "1 of 2 runs failed" in captured.err
    assert "ukr / nuts failed: RuntimeError: the chains diverged" in captured.err
    index = (tmp_path / "index.html").read_text()
    assert "the chains diverged" in index and "<th>map</th>" in index and "<th>nuts</th>" not in index


def test_help_lists_models_methods_data_sets_and_options(capsys):
    assert main(["fit", "--help"]) == 0
    out = capsys.readouterr().out
    for name, entry in entries().items():
        assert f"  {name}: " in out
        for word in (*entry.methods, *entry.datasets):
            assert word in out, (name, word)
    assert "hidden=(64, 64)" in out and "num_steps" in out and "--model KEY=VALUE" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_write_index_and_table(tmp_path):
    fig = tmp_path / "a" / "f.png"
    fig.parent.mkdir()
    fig.write_bytes(PNG_MAGIC)
    path = write_index(tmp_path, [{"title": "demo", "rows": [{"method": "map", "lpd": -0.5}], "figures": [fig]}],
                       intro="what this is")
    html = path.read_text()
    assert "<img src='a/f.png'" in html and "<tr><td>lpd</td><td>-0.5</td><td>\u2191 higher</td></tr>" in html
    assert "<p>what this is</p>" in html and "<h2>Glossary</h2>" in html
    # compare's and the tour's text: a row per quantity, a column per method, the better direction, narrow
    rows = [{"method": m, "family": f, "wall_s": 3.14159, "lpd": -1.0 + i, "r_hat_max": float("nan"),
             "coverage_90": 0.9333, "ess_bulk_per_s": 0.3257, "elpd_loo": 158.4}
            for i, (m, f) in enumerate([("map", "optimisation"), ("meanfield", "variational"),
                                        ("nuts[hidden=(8,)]", "mcmc")])]
    text = format_metrics(rows).splitlines()
    assert text[0].split() == ["quantity", "map", "meanfield", "nuts[hidden=(8,)]", "better"]
    assert text[2].split() == ["family", "optimisation", "variational", "mcmc"]
    assert text[4].split() == ["lpd", "-1", "0", "1", "\u2191", "higher"]
    assert len(text) == 2 + 7 and max(map(len, text)) <= 100
    table = format_table([{"method": "map", "x": 1.23456}, {"method": "nuts", "x": float("nan")}])
    assert table.splitlines()[0].split() == ["method", "x"] and "1.235" in table and "nan" in table


def test_diagnostics_are_marked_good_doubtful_or_bad_with_the_reason_and_the_budget_note(tmp_path):
    from probzoo.cli import diagnostic_notes

    rows = [{"method": m, "r_hat_max": r, "ess_bulk_min": e, "lpd": -1.0}
            for m, r, e in [("a", 1.004, 800.0), ("b", 1.05, 150.0), ("c", 1.6, 12.0)]]
    text = format_metrics(rows).splitlines()
    assert text[2].split() == ["r_hat_max", "1.004", "\u2713", "1.05", "?", "1.6", "\u2717", "\u2193", "lower"]
    assert text[3].split() == ["ess_bulk_min", "800", "\u2713", "150", "?", "12", "\u2717", "\u2191", "higher"]
    assert text[4].split() == ["lpd", "-1", "-1", "-1", "\u2191", "higher"]  # not a diagnostic: no mark
    notes = diagnostic_notes(rows, {"r_hat_max": "two short chains"})
    assert [level for level, _ in notes] == ["doubtful", "doubtful", "bad", "bad"]  # good ones need no note
    assert notes[2][1] == ("c r_hat_max = 1.6 is bad: the chains disagree (r_hat > 1.1): not converged, do not "
                           "read the posterior. At this budget: two short chains.")
    page = write_index(tmp_path, [{"title": "demo", "rows": rows, "figures": [],
                                   "notes": {"r_hat_max": "two short chains"}}]).read_text()
    assert "<li class='bad'>c r_hat_max = 1.6 is bad" in page and "<td>1.6 \u2717</td>" in page
    # every zoo entry's notes are about quantities the glossary judges
    from probzoo.glossary import COLUMNS

    for entry in entries().values():
        assert all(COLUMNS[q].judge is not None for q in entry.tour_notes), entry.name


def test_every_entry_is_complete():
    for name, entry in entries().items():
        assert entry.default_data in entry.datasets, name
        assert entry.tour_runs and all(m in entry.methods for m, _ in entry.tour_runs), name
        assert tuple(entry.model_class.methods) == tuple(entry.methods), name
        # every tour run passes the check the tour makes before it trains anything
        data, _ = entry.datasets[entry.default_data](0)
        model = entry.model_class(**{**entry.model_options(entry.default_data), **entry.tour_model_kwargs})
        for method, options in entry.tour_runs:
            model.check_fit(*data, method=method, **options)


def test_python_dash_m_is_the_same_command():
    out = run_cli("list", timeout=120)
    assert out.returncode == 0 and "mdn" in out.stdout
    assert Path(sys.executable).exists()


# the modules whose import takes seconds; none of them is needed to print help or to name probzoo's parts
HEAVY = ("jax", "numpyro", "arviz", "sklearn", "scipy", "matplotlib", "numpy")


@pytest.mark.parametrize("code", [
    "import probzoo",
    "import probzoo as pz; pz.__version__; dir(pz)",
    "from probzoo.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
])
def test_import_and_help_load_no_numerical_library(code):
    probe = f"{code}\nimport sys, json; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_lazy_names_resolve_to_the_real_objects():
    import probzoo as pz
    from probzoo.infer.result import Fit, load

    assert pz.Fit is Fit and pz.load is load
    assert pz.data.two_branch is __import__("probzoo.data", fromlist=["two_branch"]).two_branch
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        pz.nonexistent  # noqa: B018
