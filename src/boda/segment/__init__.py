"""Image segmentation: interactive foreground extraction (GrabCut)."""
