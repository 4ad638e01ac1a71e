"""Image data sets: the built-in ORL faces and CelebA-style folders or zips of images."""

from aelatent.data.images import ImageSet
from aelatent.data.loading import load_images

__all__ = ["ImageSet", "load_images"]
