"""`thinkfamily serve`: the practitioner view on localhost (uvicorn, one process)."""
from __future__ import annotations

from pathlib import Path

import click

from thinkfamily.errors import ConfigError


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on (keep it local behind a proxy)")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--users", "users_path", default="conf/users.yaml", show_default=True,
              help="users file (copy conf/users.example.yaml)")
@click.option("--refresh-seconds", default=10.0, show_default=True, help="how often to look for new Delta versions")
@click.option("--hash-password", is_flag=True, help="prompt for a password, print its scrypt hash for the users file, exit")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, users_path: str, refresh_seconds: float, hash_password: bool) -> None:
    """Serve the read-only triage list and family profiles over the lake's gold tables."""
    from thinkfamily.web.auth import hash_password as make_hash

    if hash_password:
        pw = click.prompt("password", hide_input=True, confirmation_prompt=True)
        click.echo(make_hash(pw))
        return
    import uvicorn

    from thinkfamily.cli import load_ctx_env
    from thinkfamily.web.app import create_app
    from thinkfamily.web.auth import load_users

    env = load_ctx_env(ctx)
    path = Path(users_path)
    if not path.is_absolute():
        path = Path(env.root) / path
    if not path.exists():
        raise ConfigError(f"{path}: users file not found",
                          hint="copy conf/users.example.yaml to conf/users.yaml and set each password_hash "
                               "with `thinkfamily serve --hash-password`")
    app = create_app(env, load_users(path), refresh_seconds=refresh_seconds)
    click.echo(f"practitioner view on http://{host}:{port}/ (lake {env.lake}; Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False, server_header=False)
