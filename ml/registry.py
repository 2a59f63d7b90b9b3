"""MLflow tracking and registry for the risk models: where runs go, which version is champion.

The store comes from the environment config (env.mlflow): locally a sqlite file and an
artefact folder under the project root, on a cluster a tracking server. A registered model
`<name>` gets the alias `champion` only when every promotion gate passed (ml.gates); scoring
loads `models:/<name>@champion` and refuses to run without one.
"""
from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from thinkfamily.config import EnvConfig
from thinkfamily.errors import PipelineError

CHAMPION = "champion"


def _resolve_sqlite(uri: str, env: EnvConfig) -> str:
    """sqlite:///mlflow.db is relative to the project root, not to wherever the command runs."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        return prefix + str(Path(env.resolve(uri[len(prefix):])).resolve())
    return uri


def tracking_uri(env: EnvConfig) -> str:
    return _resolve_sqlite(env.mlflow.tracking_uri, env)


def artifact_location(env: EnvConfig) -> str | None:
    loc = env.mlflow.artifact_location
    if loc is None:
        return None
    resolved = env.resolve(loc)
    return Path(resolved).resolve().as_uri() if "://" not in resolved else resolved


def configure(env: EnvConfig) -> str:
    """Point mlflow at the env's store; create the experiment if needed; return its id."""
    mlflow.set_tracking_uri(tracking_uri(env))
    mlflow.set_registry_uri(_resolve_sqlite(env.mlflow.registry_uri, env) if env.mlflow.registry_uri else tracking_uri(env))
    exp = mlflow.get_experiment_by_name(env.mlflow.experiment)
    exp_id = exp.experiment_id if exp else mlflow.create_experiment(env.mlflow.experiment,
                                                                    artifact_location=artifact_location(env))
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def champion(name: str) -> ModelVersion | None:
    """The version holding the champion alias, or None (no model registered, or none fit)."""
    try:
        return MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def require_champion(name: str) -> ModelVersion:
    mv = champion(name)
    if mv is None:
        raise PipelineError(
            f"model {name!r} has no champion in the MLflow registry; nothing scored, nothing written",
            hint=f"run `thinkfamily train --model {name}`; a version becomes champion only if it passes every gate",
        )
    return mv


def register(model_uri: str, name: str, tags: dict[str, str]) -> ModelVersion:
    """Register a logged model as a new version of `name`, with tags (gate outcome, run ids)."""
    mv = mlflow.register_model(model_uri, name, tags=tags)
    return mv


def promote(name: str, version: str | int) -> None:
    MlflowClient().set_registered_model_alias(name, CHAMPION, str(version))
