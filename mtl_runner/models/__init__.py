"""Models: preprocessing inputs, trunks (shared parameters), task heads."""
