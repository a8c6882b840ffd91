"""Packaging: metadata in setup.cfg; here the package layout.

The top-level ``zoo/`` folder (model cards, embedded models, recipes) is installed inside the
package as ``dpkeras/_zoo``; :func:`dpkeras.zoo.cards.zoo_dir` finds it there, or at
``<repo>/zoo`` in a source checkout / editable install.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["dpkeras", "dpkeras.*"]) + ["dpkeras._zoo"],
    package_dir={"dpkeras._zoo": "zoo"},
    package_data={
        "dpkeras": ["examples/**/*"],
        "dpkeras._zoo": ["README.md", "cards/*.json", "models/*", "recipes/**/*"],
    },
    exclude_package_data={"dpkeras._zoo": ["recipes/*/split/**/*"]},
)
