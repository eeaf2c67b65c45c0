"""Image exports: the mixer, the patch grid, reading and writing patches, whole-export tools."""
