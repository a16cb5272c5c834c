"""After the studies: figures, Grad-CAM maps, spike visualizations and the SNN-vs-ANN report."""
