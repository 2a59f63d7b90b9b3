"""Risk models: evaluation, fairness, promotion gates, reporting and model configuration.

The training and scoring jobs (built on the gold tables) call these; nothing here needs Spark.
"""
