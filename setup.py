"""Packaging beside pyproject.toml (which holds the metadata): the repository's specs/
folder ships inside the package as archviz/specs/ (package data), so the bundled specs
work after `pip install archviz` as they do in a clone (archviz/library.py finds either)."""
import os

from setuptools import find_packages, setup

SPEC_DIRS = sorted(d for d, _, files in os.walk("specs") if any(f.endswith(".yaml") for f in files))
SPEC_PACKAGES = {d.replace(os.sep, ".").replace("specs", "archviz.specs", 1): d for d in SPEC_DIRS}

setup(
    packages=find_packages(include=["archviz", "archviz.*"]) + list(SPEC_PACKAGES),
    package_dir=SPEC_PACKAGES,
    package_data={**{p: ["*.yaml"] for p in SPEC_PACKAGES}, "archviz": ["schema/*.json"]},
)
