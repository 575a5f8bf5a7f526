"""mmconvert: move kernel .mmap handlers to the mmap_prepare/mmap_proto hook."""

__version__ = "0.1.0"
