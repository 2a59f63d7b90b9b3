"""thinkfamily: Spark + Delta job suite for multi-agency family analytics."""
from setuptools import find_packages, setup

setup(
    name="thinkfamily",
    version="0.1.0",
    description="Multi-agency family analytics on Spark, Delta Lake, Great Expectations and MLflow",
    python_requires=">=3.10",
    packages=find_packages(include=["thinkfamily", "thinkfamily.*", "jobs", "jobs.*", "ml", "ml.*"]),
    package_data={"thinkfamily": ["data/*", "data/**/*"]},
    include_package_data=True,
    install_requires=[
        "pyspark==4.2.0",
        # The 4.4.1 Delta jar is not published on Maven Central; Python and JVM sides must match.
        "delta-spark==4.4.0",
        "great-expectations>=1.24,<1.25",
        "mlflow>=3.17,<4",
        "scikit-learn>=1.9,<2",
        "scipy>=1.11",  # ml.metrics: vectorised rank AUC for bootstrap CIs (already pinned via sklearn)
        "matplotlib>=3.8",  # ml.report: evaluation plots (already pinned via mlflow)
        "pyyaml>=6",
        "pydantic>=2.7,<3",
        "click>=8.1",
        "pandas>=2.2,<3",  # pyspark 4.2 warns on pandas 3
        "numpy>=2",
        "pyarrow>=15",
        "faker>=30",
        "splink>=5.0,<6",
        "duckdb>=1.1",
        # thinkfamily.web (practitioner view): delta-rs reads Delta without a JVM; FastAPI/Jinja2 pages;
        # python-multipart parses the sign-in form; mistune renders model cards (HTML escaped)
        "deltalake>=1.6,<2",
        "fastapi>=0.110",
        "uvicorn>=0.30",
        "jinja2>=3.1",
        "itsdangerous>=2.1",
        "python-multipart>=0.0.20",
        "mistune>=3",
    ],
    extras_require={
        "dev": ["pytest>=8", "chispa>=0.10", "ruff>=0.6",
                "httpx>=0.27",  # FastAPI TestClient
                "playwright>=1.50"],  # browser tests drive Debian's /usr/bin/chromium; never `playwright install`
    },
    entry_points={"console_scripts": ["thinkfamily=thinkfamily.cli:main"]},
)
