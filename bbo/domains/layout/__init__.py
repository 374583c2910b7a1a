"""The layout domain: document pages of labelled boxes, procedural natural data, a set diffusion
prior (``doc-layouts``) and the layout scores (alignment, overlap, max-IoU)."""

from bbo.domains.layout import codec as _codec  # noqa: F401  (registers the slot codec)
from bbo.domains.layout.domain import LayoutDomain
from bbo.domains.layout.generator import LABELS, MAX_ELEMENTS, generate_page, pages

__all__ = ["LABELS", "MAX_ELEMENTS", "LayoutDomain", "generate_page", "pages"]
