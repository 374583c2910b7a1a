"""Images: the domain, the pixel codec, the digits data, a small classifier (oracle and metrics),
and pretraining of the shipped ``digits`` prior (``bbo pretrain image``)."""

from bbo.domains.image import codec as _codec  # noqa: F401  (registers the pixel codec)
from bbo.domains.image.domain import ImageDomain

__all__ = ["ImageDomain"]
