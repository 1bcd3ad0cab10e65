"""colorem — colorize black-and-white photos with an encoder–fusion–decoder CNN in Lab space."""

from colorem.errors import ColoremError, ImageReadError, ImageTooLargeError, WeightsError
from colorem.colorize import Colorizer, load

__version__ = "0.1.0"
__all__ = [
    "ColoremError",
    "ImageReadError",
    "ImageTooLargeError",
    "WeightsError",
    "Colorizer",
    "load",
    "__version__",
]
