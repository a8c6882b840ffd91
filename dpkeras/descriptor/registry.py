"""The descriptor registry: every name users write in ``input.json``, declared once on the
class that implements it.

``@register("se_e2_a", "se_a")`` makes the class the descriptor of those names (the first is
the one stored, its ``descriptor_type``); ``DESCRIPTORS[name]`` is the class. Class traits say
what the rest of dpkeras needs to know about a kind: ``MIXED_TYPES`` (its per-type parameters
are rows of a type embedding, one network for all types: se_atten, se_atten_v2).
"""

from dpkeras.errors import DPKerasError

DESCRIPTORS = {}


def register(*names):
    """Class decorator: register a descriptor class under ``names`` (the first canonical)."""
    def deco(cls):
        cls.descriptor_type = names[0]
        for name in names:
            if name in DESCRIPTORS and DESCRIPTORS[name] is not cls:
                raise ValueError(f"descriptor name {name!r} registered twice")
            DESCRIPTORS[name] = cls
        return cls
    return deco


SERIALIZED_KINDS = "se_e2_a, se_e2_r, se_e3, dpa1/se_atten, hybrid of se_e2_a/se_e2_r/se_e3"


def from_serialized(data, ntypes, source):
    """``(section, variables, type_embedding section or None)`` of DeePMD-kit's serialized
    descriptor dict ``data``, read by the class registered under its ``type``."""
    cls = DESCRIPTORS.get(data.get("type"))
    if cls is None:
        raise DPKerasError(f"{source}: descriptor {data.get('type')!r} is not supported by "
                           f"dpkeras yet (supported: {SERIALIZED_KINDS})")
    return cls.from_serialized(data, ntypes, source)
