"""Readers and writers of foreign model formats (DeePMD-kit ``.pb`` and ``.dp``)."""
