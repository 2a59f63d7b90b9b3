"""The practitioner view: a read-only, server-rendered web app over the gold (and restricted
silver) Delta tables, read with delta-rs (no JVM in the request path).

    from thinkfamily.web.app import create_app
    app = create_app(env, users_path)         # FastAPI app; `thinkfamily serve` runs it with uvicorn
"""
