"""`radcore book --profile ci` end to end in a scratch copy: grid, analysis notebooks, Jupyter Book HTML.

The last test opens the rendered results page in headless Chromium (Debian's chromium + chromedriver,
installed by .ci/run) as a reader would: every plot has loaded, no error output shows, and a screenshot
is kept under _build/screenshots/ (out of git).
"""

import re
import shutil
from pathlib import Path

import pytest

from conftest import copy_book_sources
from radcore.grid.book import make_book
from radcore.grid.profile import load_profile
from radcore.grid.store import collect

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("compendium")
    copy_book_sources(root)
    (root / ".pytest_cache").mkdir()  # as in a real checkout after `make test`: stray pages must not break -W
    (root / ".pytest_cache" / "README.md").write_text("# pytest cache directory #\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        profile = load_profile("ci")
        report, index = make_book(profile, workers=2, progress=False)
        yield root, profile, report, index


def test_ci_grid_completes_every_cell(built):
    root, profile, report, _ = built
    assert report.ok, report.summary()
    frame = collect(root / profile.results_root)
    assert len(frame) == len(profile.cells())
    assert (frame.loc[frame["mode"] == "dp-lora", "epsilon_spent"] <= 1.0).all()


def test_book_has_every_page_and_run_notebook(built):
    root, profile, _, index = built
    html = root / "_build/html"
    assert index.is_file()
    for page in ("book/methods", "book/reproducing", "book/appendix", "book/analysis/data",
                 "book/analysis/results", "book/analysis/statistics", "book/analysis/real_reports",
                 "book/analysis/privacy_audit", "book/analysis/speed"):
        assert (html / f"{page}.html").is_file(), page
    for cell in profile.cells():
        assert (html / cell.notebook.with_suffix(".html")).is_file(), cell.key


def test_a_glued_number_appears_in_the_built_html(built):
    root, profile, _, _ = built
    page = (root / "_build/html/book/analysis/results.html").read_text()
    pasted = re.findall(r'<span class="pasted-text">([^<]+)</span>', page)
    assert str(len(profile.cells())) in pasted  # res_n_runs, glued from the results store


def test_real_reports_chapter_is_empty_without_openi_runs(built):
    root, *_ = built
    text = re.sub(r"<[^>]+>", "", (root / "_build/html/book/analysis/real_reports.html").read_text())
    assert "This chapter is empty in this build" in text  # the note, with the commands that fill the chapter
    assert "radcore grid --profile openi --workers 2  # MiniLM" in text


def test_privacy_audit_chapter_is_empty_without_audited_runs(built):
    root, *_ = built
    text = re.sub(r"<[^>]+>", "", (root / "_build/html/book/analysis/privacy_audit.html").read_text())
    assert "No audited runs in this build" in text and "radcore grid --profile audit" in text


def test_no_error_output_in_any_page(built):
    root, *_ = built
    for page in (root / "_build/html/book").rglob("*.html"):
        text = page.read_text()
        assert "Traceback (most recent call last)" not in text, page
        assert 'class="output traceback' not in text, page


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    driver_path = shutil.which("chromedriver")
    chromium = shutil.which("chromium")
    if not (driver_path and chromium):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,2000"):
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(service=Service(driver_path), options=options)


def test_results_page_as_a_reader_sees_it(built):
    root, *_ = built
    driver = _browser()
    try:
        driver.get((root / "_build/html/book/analysis/results.html").as_uri())
        images = driver.execute_script(
            "return Array.from(document.querySelectorAll('main img')).map(i => [i.src, i.naturalWidth]);")
        assert len(images) >= 2, images  # the privacy-utility curve and the per-label heatmap at least
        assert all(width > 0 for _src, width in images), images
        noisy = driver.execute_script(
            "return Array.from(document.querySelectorAll('.output.stderr, .output.traceback, .output.error'))"
            ".map(e => e.innerText.slice(0, 200));")
        assert noisy == [], noisy  # no warnings or errors printed into the page
        shots = REPO / "_build/screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shots / "results.png"))
    finally:
        driver.quit()
