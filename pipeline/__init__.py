"""ds-pipeline: train DeepSpeech-compatible speech-to-text models from open corpora."""

__version__ = "0.1.0"
