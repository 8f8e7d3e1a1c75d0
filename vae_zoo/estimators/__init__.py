"""The estimators: SGVB-A/B, the KL term and the importance-weighted bound (objectives), and log p(x) by
importance weighting, App. D and AIS (marginal_likelihood)."""
