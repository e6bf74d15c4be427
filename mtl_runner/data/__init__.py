"""Data: read a source into a table, split it, and turn it into model inputs and targets."""
