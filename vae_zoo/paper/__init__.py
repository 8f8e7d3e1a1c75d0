"""The paper's evidence: Figures 2 and 3 (settings, training, measuring, tables) and the images (viz)."""
