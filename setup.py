"""Build hook: ship ``langadapt_lm_eval.pth`` and the hook it imports at the root of
site-packages (docs/backend.md)."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# Python runs the import line of a site-packages .pth file at start-up: it imports the hook
# that registers the langadapt-hf model with lm-eval. The hook is a top-level copy of
# langadapt_tasks/backend/autoregister.py (standard library only): importing the package
# itself at start-up would fix it to site-packages before the current directory is on the path.
BACKEND = Path("langadapt_tasks") / "backend"
COPIES = {
    BACKEND / "langadapt_lm_eval.pth": "langadapt_lm_eval.pth",
    BACKEND / "autoregister.py": "langadapt_lm_eval_hook.py",
}


class BuildPyWithPth(build_py):
    """build_py that also copies the .pth file to the root of the build (the wheel's root,
    i.e. site-packages once installed), as pytest-cov ships its .pth."""

    def run(self) -> None:
        super().run()
        for source, name in COPIES.items():
            path = Path(__file__).resolve().parent / source
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: the sdist must ship it")
            self.copy_file(str(path), str(Path(self.build_lib) / name), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        extra = [str(Path(self.build_lib) / name) for name in COPIES.values()]
        return [*super().get_outputs(include_bytecode), *extra]


setup(cmdclass={"build_py": BuildPyWithPth})
