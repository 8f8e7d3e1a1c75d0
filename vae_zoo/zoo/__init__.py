"""The zoo: the paper's preset grid, the registry (`list_models`, `load`, cards) and the cards' metrics."""
