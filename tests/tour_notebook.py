"""Runs examples/tour.ipynb in a real kernel (nbclient, ipykernel on this interpreter, with the
socketeer the tests import): used by tests/test_notebook.py, and run as a program to refresh the
committed outputs after changing the tour or a display:

    PYTHONPATH=python python tests/tour_notebook.py        # rewrites examples/tour.ipynb

The notebook is committed executed, so readers on GitHub see every view. Machine noise is kept
out where it can be: no timing metadata, the kernelspec and language_info left as committed (not
this machine's interpreter path and version). Ports, pids and inode numbers do differ from run to
run, which is why the test checks that the views show, never the outputs byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from subprocess_env import ROOT, child_env

TOUR = ROOT / "examples" / "tour.ipynb"
KERNEL = "socketeer-tour"


def kernel_for_this_interpreter(directory: Path) -> str:
    """A kernelspec (under ``directory``, to be put first on JUPYTER_PATH) running ipykernel on
    this very interpreter with the socketeer the tests import: not whatever `python3` a globally
    installed kernelspec names."""
    spec = directory / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "socketeer tour", "language": "python",
        "env": {"PYTHONPATH": child_env()["PYTHONPATH"]},
    }))
    return KERNEL


def execute(notebook: Any, workdir: Path) -> Any:
    """Executes ``notebook`` (an nbformat node, changed in place: outputs filled in) with the
    kernel made by :func:`kernel_for_this_interpreter`, its cells running in ``workdir``; the
    notebook's metadata stays as it was. JUPYTER_PATH must name the kernel's directory."""
    import nbclient

    metadata = json.loads(json.dumps(notebook.metadata))
    client = nbclient.NotebookClient(notebook, timeout=60, kernel_name=KERNEL, record_timing=False,
                                     resources={"metadata": {"path": str(workdir)}})
    asyncio.run(client.async_execute())  # execute() would keep its event loop (and its fds) open
    notebook.metadata.clear()
    notebook.metadata.update(metadata)
    return notebook


def main() -> None:
    import os

    import nbformat

    with tempfile.TemporaryDirectory(prefix="tour-") as temporary:
        jupyter = Path(temporary) / "jupyter"
        os.environ["JUPYTER_PATH"] = str(jupyter)
        os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
        kernel_for_this_interpreter(jupyter)
        notebook = nbformat.read(TOUR, as_version=4)
        execute(notebook, Path(temporary))
    nbformat.write(notebook, TOUR)
    print(f"executed {TOUR}: {sum(cell.cell_type == 'code' for cell in notebook.cells)} code cells")


if __name__ == "__main__":
    main()
