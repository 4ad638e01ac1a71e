"""Image data sets: the built-in ORL faces and CelebA-style folders or zips of images."""

from aelatent.data.images import ImageSet, load_images

__all__ = ["ImageSet", "load_images"]
