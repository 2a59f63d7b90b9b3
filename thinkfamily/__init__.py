"""thinkfamily: multi-agency family analytics on Spark + Delta Lake."""

__version__ = "0.1.0"
