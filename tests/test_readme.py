"""The README and the documentation site: the README's code runs as written, its tables are the generated ones,
and the site builds with warnings as errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_code_blocks_run_as_written(tmp_path, monkeypatch, capsys):
    blocks = _python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)  # the tour saves a fit into the working folder
    scope: dict = {"__name__": "__readme__"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md block {i + 1}", "exec"), scope)
    out = capsys.readouterr().out
    # the claims the tour's comments make, read back from what it computed
    assert scope["scores"]["excess_nll"] < 0.03, scope["scores"]
    assert "nats above the true density" in out
    assert scope["ukr"].evaluate(scope["Y"], Z_true=scope["Z"])["trustworthiness"] > 0.95
    assert scope["pz"].metrics.cluster_accuracy(scope["t"], scope["vae"].predict(scope["X"])) > 0.95
    table = scope["table"]
    assert list(table.index) == ["nuts", "meanfield", "laplace"] and table["lpd"].notna().all()
    assert table.loc["nuts", "r_hat_max"] < 1.05  # four chains on a 3-dimensional Gaussian posterior
    assert (tmp_path / "mdn-fit").is_dir()


def test_readme_methods_table_is_the_generated_one():
    from probzoo.zoo import methods_table

    readme = (ROOT / "README.md").read_text()
    assert methods_table() in readme


def _prose_lines(text: str) -> list[str]:
    """Lines of running text (outside code blocks and tables) long enough to be a sentence of their own."""
    lines, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and not line.startswith(("|", "#", "<!--", "    ")) and len(line.strip()) > 50:
            lines.append(line.strip())
    return lines


def test_readme_is_short_and_no_text_exists_twice():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    pages = {"README.md": readme, **{p.relative_to(ROOT).as_posix(): p.read_text()
                                     for p in sorted((ROOT / "docs").rglob("*.md"))}}
    seen: dict[str, str] = {}
    repeated = []
    for name, text in pages.items():
        for line in _prose_lines(text):
            if line in seen and seen[line] != name:
                repeated.append((seen[line], name, line))
            seen.setdefault(line, name)
    assert not repeated, repeated


def test_readme_links_reach_existing_pages():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert links
    missing = [link for link in links if not (ROOT / link).is_file()]
    assert not missing, missing


def test_documentation_site_builds_with_warnings_as_errors(tmp_path):
    # mkdocs, mkdocs-material and mkdocstrings come with the [dev] extra
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, run.stdout + run.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("MDN", "ClusteringVAE", "UKR", "RBM", "compare", "from_numpyro", "run_svi"):
        assert re.search(rf'id="probzoo\.[\w.]*\b{name}"', api), name
    glossary = (tmp_path / "site" / "glossary" / "index.html").read_text()
    assert "excess_nll" in glossary and "<!-- glossary -->" not in glossary
    for model in ("mdn", "clustering_vae", "ukr", "rbm"):
        page = (tmp_path / "site" / "models" / model / "index.html").read_text()
        for src in re.findall(r'<img[^>]+src="([^"]+)"', page):  # every figure a page shows exists in the site
            assert (tmp_path / "site" / "models" / model / src).resolve().is_file(), (model, src)
