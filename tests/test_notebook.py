"""The lesson as a notebook on the package: executed top to bottom, fresh, as a learner would."""

from __future__ import annotations

import pytest

from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.real_data

NOTEBOOK = REPO_ROOT / "notebooks" / "logistic-regression.ipynb"


def test_the_notebook_runs_top_to_bottom_without_an_error(real_data_dir):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # committed stripped
    # A failing cell raises CellExecutionError here, naming the cell and the error.
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO_ROOT)}}
    ).execute()
    text = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    images = sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert images >= 6  # the figures appear inline: samples, curves, predictions, deskew, weights, your digit
    assert "Epoch [4], val_loss:" in text and "reloaded:" in text
    accuracy = float(text.split("raw pixels ")[1].split(" -> deskewed ")[1].split()[0])
    assert accuracy >= 0.955  # the deskewed default, trained in the notebook
