"""Training and validation systems of the dpa1-mt-cho-water recipe, from dpkeras' shipped data.

    python zoo/recipes/dpa1-mt-cho-water/split_data.py [OUT_DIR]

writes, under ``OUT_DIR`` (default ``split`` next to this file):

- ``train/C1H4O2``, ``train/C3H3O4``: the first 90 % of each molecule's frames;
  ``valid/C1H4O2``, ``valid/C3H3O4``: the last 10 % (contiguous, deterministic);
- water is used as shipped: ``water/data_0`` and ``data_1`` for training (read in place by
  ``input.json``), nothing of ``data_2``/``data_3`` is seen in pretraining.

Held out from pretraining altogether: ``nopbc/C4H3O1`` (a composition the model never sees)
and ``water/data_2``, ``data_3``. The zoo card's ``validation`` refers to these splits.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "dpa1-cho-mini"))
from split_data import split  # noqa: E402  (the same contiguous 90/10 split as dpa1-cho-mini)

SYSTEMS = ("C1H4O2", "C3H3O4")   # C4H3O1 is held out of pretraining altogether

if __name__ == "__main__":
    split(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "split"), systems=SYSTEMS)
