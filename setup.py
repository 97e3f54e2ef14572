"""Ship hwspecs/ (kept at the repository root) inside the wheel as simhw/data/hwspecs.

The specs stay at the root so they are easy to find and edit; this build step copies them into
the package so that `simhw estimate ... --hw a100` works from any directory after a
non-editable `pip install .`.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent


class BuildWithData(build_py):
    def run(self):
        super().run()
        for folder in ("hwspecs", "workloads"):
            target = Path(self.build_lib) / "simhw" / "data" / folder
            target.mkdir(parents=True, exist_ok=True)
            for src in sorted((ROOT / folder).glob("*.yaml")):
                shutil.copy2(src, target / src.name)


setup(cmdclass={"build_py": BuildWithData})
