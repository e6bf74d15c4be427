"""Training: from a validated recipe to a trained model and a complete run directory."""
