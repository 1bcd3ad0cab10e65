"""colorem — colorize black-and-white photos with an encoder–fusion–decoder CNN in Lab space."""

from colorem.errors import ColoremError, ImageReadError, ImageTooLargeError, WeightsError
from colorem.colorize import Colorizer, load
from colorem.hints import Hint, HintError

__version__ = "0.1.0"
__all__ = [
    "ColoremError",
    "ImageReadError",
    "ImageTooLargeError",
    "WeightsError",
    "HintError",
    "Hint",
    "Colorizer",
    "load",
    "__version__",
]
