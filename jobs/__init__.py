"""Pipeline stage jobs: each module has run(spark, env, ...) and main() for spark-submit."""
