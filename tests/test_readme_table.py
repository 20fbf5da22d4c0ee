"""`radcore table --readme`: the README's results block is replaced from the runs, and only that block."""

import pytest

from radcore.readme_table import replace_block


def test_the_block_between_the_profile_markers_is_replaced_and_nothing_else(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- table:quick -->\nold table\n<!-- /table:quick -->\noutro\n"
                      "<!-- table:ci -->\nci table\n<!-- /table:ci -->\n")
    replace_block(readme, "quick", "| a |\n|---|\n| 1 |\n")
    text = readme.read_text()
    assert "old table" not in text and "| 1 |" in text
    assert text.startswith("intro\n") and "outro\n" in text and "ci table" in text


def test_a_file_without_the_markers_is_an_error_naming_them(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match="<!-- table:quick -->"):
        replace_block(readme, "quick", "x")
    assert readme.read_text() == "no markers here\n"
