"""Build hook: the wheel carries the repository's top-level ``weights/`` (bundled models and their
registry) and ``ops/`` (native sources, compiled on the user's machine) inside the package, as
``stylegan_anime/_bundled/<folder>``. They stay at the top level of the repository, where people
look for them; ``stylegan_anime/ops/bundled.py`` finds them in either place."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = ("weights", "ops")
ROOT = Path(__file__).resolve().parent


class BuildPyWithBundled(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads them from the checkout
            return
        for folder in BUNDLED:
            dest = Path(self.build_lib) / "stylegan_anime" / "_bundled" / folder
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(ROOT / folder, dest, ignore=shutil.ignore_patterns(".*", "__pycache__"))


setup(cmdclass={"build_py": BuildPyWithBundled})
