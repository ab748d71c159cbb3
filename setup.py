"""Lists lib/*.py as top-level modules: the board imports them from /flash/lib, the host the same way."""

from pathlib import Path

from setuptools import setup

setup(py_modules=sorted(p.stem for p in Path(__file__).parent.joinpath("lib").glob("*.py")))
