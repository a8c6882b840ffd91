"""dpkeras: DeePMD-style deep potentials as Keras 3 models.

Pipeline: data -> neighbor list -> descriptor -> fitting -> model -> loss -> training; the
DeePMD-kit formats (``input.json``, frozen ``.pb``, ``.dp``) are read and written at the edges.
"""

__version__ = "0.1.0"
