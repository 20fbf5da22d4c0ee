"""The compendium end to end: synthetic corpora, the grid, the analysis notebooks, and the Jupyter Book.

``make_book(profile)`` is what ``make book`` runs. Every notebook is executed by papermill here; the
Jupyter Book build only renders (``execute_notebooks: off``), so the book shows exactly what ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from radcore.grid.profile import PROFILE_DIR, Profile
from radcore.grid.runner import NOTEBOOK_DIR, GridReport, notebook_parameters, run_grid

ANALYSIS_NOTEBOOKS = ("data", "results", "statistics", "real_reports", "privacy_audit", "speed")
ANALYSIS_DIR = Path("book/analysis")
HTML_INDEX = Path("_build/html/index.html")
TOC = Path("_toc.yml")


def analysis_parameters(profile: Profile) -> dict:
    """What the analysis notebooks are told: the profile and where its results are."""
    shipped = Path(profile.source).parent == PROFILE_DIR
    return {"profile": profile.name if shipped else profile.source, "results_root": str(profile.results_root)}


def run_analysis(profile: Profile, *, names=ANALYSIS_NOTEBOOKS, notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """Execute each analysis notebook for ``profile`` into ``book/analysis/``; returns the executed files."""
    from radcore.grid.kernel import execute

    ANALYSIS_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        source = notebook_dir / f"{name}.ipynb"
        wanted = analysis_parameters(profile)
        params = {k: v for k, v in wanted.items() if k in notebook_parameters(source)}
        target = ANALYSIS_DIR / f"{name}.ipynb"
        partial = target.with_name(f"{name}.partial.ipynb")
        execute(source, partial, parameters=params, cwd=os.getcwd())
        os.replace(partial, target)
        written.append(target)
    return written


def profile_toc(profile: Profile) -> Path:
    """``_toc.yml`` with its run-notebook glob replaced by this profile's finished cells, in grid order.

    The root ``_toc.yml`` globs every profile's notebooks (sorted by path); the book of one profile lists
    exactly the cells that ran for it, and a failed cell has no notebook to list.
    """
    toc = yaml.safe_load(TOC.read_text())
    runs = [{"file": cell.notebook.with_suffix("").as_posix()} for cell in profile.cells() if cell.notebook.is_file()]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            if any("glob" in section for section in chapter.get("sections", [])):
                chapter.pop("sections")
                if runs:
                    chapter["sections"] = runs
    target = Path("_build") / f"toc-{profile.name}.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(toc, sort_keys=False))
    return target


class BookBuildFailed(RuntimeError):
    """Jupyter Book stopped on an error or a warning (its own output, above, names the page)."""


def build_html(*, toc: Path = TOC) -> Path:
    """Render the book in the current directory with warnings as errors; returns the index page."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", ".", "--toc", str(toc), "--warningiserror", "--quiet"]
    if subprocess.run(command).returncode:
        raise BookBuildFailed("jupyter-book build failed: its warnings, printed above, name the page; "
                              "fix it and run again (finished cells are kept)")
    return HTML_INDEX


def make_book(profile: Profile, *, workers: int = 1, scheduler: str | None = None,
              progress: bool = True) -> tuple[GridReport, Path]:
    """Grid (resuming; ``workers``/``scheduler`` as in :func:`run_grid`), analysis notebooks, HTML. Failed
    cells stay out of the book; the caller reports them."""
    report = run_grid(profile, workers=workers, scheduler=scheduler, progress=progress)
    run_analysis(profile)
    return report, build_html(toc=profile_toc(profile))
