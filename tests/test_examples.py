"""The repository's tools that make the documentation's inputs say what they lack in one line."""

from __future__ import annotations

import pytest

from mnist_logreg.errors import DataError
from tests import letters
from tests.examples import write_examples


def test_the_letters_folder_without_fonts_says_to_run_make_fonts(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(letters, "FONT_DIR", tmp_path / "no-fonts")
    with pytest.raises(SystemExit) as ended:
        letters.main([str(tmp_path / "letters")])
    assert str(ended.value) == f"error: no fonts in {tmp_path / 'no-fonts'}: run 'make fonts' first " + (
        "(it unpacks Debian's handwriting fonts)"
    )
    assert not (tmp_path / "letters").exists()


def test_the_examples_without_mnist_say_to_fetch_it(tmp_path):
    with pytest.raises(DataError, match=r"MNIST is not in .*: run 'mnist-logreg fetch --dataset mnist' first"):
        write_examples(tmp_path / "examples", tmp_path / "data")


def test_make_run_installs_the_extras_that_the_readmes_commands_need():
    import re

    from tests.helpers import REPO_ROOT

    needs = {"serve": "web", "export": "export"}  # the commands that stop without their extra (cli.extra_needed)
    readme = (REPO_ROOT / "README.md").read_text()
    used = {needs[name] for name in needs if re.search(rf"mnist-logreg {name}\b", readme)}
    assert used == {"web", "export"}
    makefile = (REPO_ROOT / "Makefile").read_text()
    prerequisites = re.search(r"^run: (.*)$", makefile, re.MULTILINE)[1]
    installed = re.search(r"\.installed-([\w,]+)", prerequisites)
    assert installed, f"make run installs no extra: {prerequisites}"
    assert used <= set(installed[1].split(","))
