"""LORE: conversational analytics grounded in a semantic layer.

>>> from lore import Lore
>>> Lore.__name__
'Lore'
"""

from lore.core import Lore

__version__ = "0.1.0"
__all__ = ["Lore", "__version__"]
