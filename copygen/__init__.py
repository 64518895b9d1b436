"""copygen: Chinese marketing copy from a product catalogue, with fine-tuned language models.

This package is the small shared core (settings, catalogue schema, prompt format, text rules)
and the command line. It imports nothing heavy at module level.
"""

__version__ = "0.1.0"
