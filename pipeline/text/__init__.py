"""Text handling: alphabets and per-language normalization."""
