"""The `thinkfamily` command. Errors print as one line; --debug shows the traceback."""
from __future__ import annotations

import sys

import click

from thinkfamily.errors import ThinkFamilyError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--env", "env_name", default=None, help="environment: a name in conf/ (local, cluster) or a YAML path")
@click.option("--debug", is_flag=True, help="show tracebacks")
@click.option("-v", "--verbose", is_flag=True, help="more log output")
@click.pass_context
def cli(ctx: click.Context, env_name: str | None, debug: bool, verbose: bool) -> None:
    """thinkfamily: multi-agency family analytics on Spark + Delta Lake."""
    from thinkfamily.logs import setup_logging

    setup_logging(verbose)
    ctx.ensure_object(dict)
    ctx.obj["env_name"] = env_name
    ctx.obj["debug"] = debug


def load_ctx_env(ctx: click.Context):
    """The EnvConfig chosen by --env (commands call this lazily so --help never needs Spark)."""
    from thinkfamily.config import load_env

    return load_env(ctx.obj.get("env_name"))


def _register() -> None:
    """Each stage owns its click command; the CLI only collects them (imports stay lazy-cheap)."""
    import importlib

    for module, name in COMMANDS:
        cli.add_command(getattr(importlib.import_module(module), name))


# (module, click command) — a stage adds its command here.
COMMANDS: list[tuple[str, str]] = [
    ("thinkfamily.doctor", "doctor"),
    ("thinkfamily.status", "status"),
    ("thinkfamily.democli", "demo"),
    ("thinkfamily.synth.cli", "generate"),
    ("thinkfamily.linkage.cli", "link"),
    ("thinkfamily.evalcli", "evaluate"),
    ("thinkfamily.runcli", "run"),
    ("ml.cli", "train"),
    ("thinkfamily.web.cli", "serve"),
    ("thinkfamily.exportcli", "export"),
    ("thinkfamily.erasecli", "erase"),
]


def main() -> None:
    _register()
    debug = "--debug" in sys.argv
    try:
        code = cli.main(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ThinkFamilyError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # last resort: one line, the traceback only on --debug
        if debug:
            raise
        click.echo(f"error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                   "(re-run with --debug for the traceback)", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
