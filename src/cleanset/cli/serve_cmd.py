"""`cleanset serve`: the HTTP service (docs/service.md). Thin: options become ``Settings``, the rest is
``cleanset.service``."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("serve")
    def serve(
        bank: Annotated[list[str], typer.Option("--bank", "-b", help="Bank to serve, NAME or NAME@VERSION (repeat).")],
        host: Annotated[str, typer.Option(help="Address to listen on; put a TLS proxy in front (docs/service.md).")] = (
            "127.0.0.1"
        ),
        port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
        workers: Annotated[int, typer.Option(help="Processes; each holds its own copy of the indexes.", min=1)] = 1,
        rate: Annotated[float, typer.Option(help="Requests per second per key (0: no limit).", min=0)] = 2000.0,
        burst: Annotated[int, typer.Option(help="Requests a key may send at once.", min=1)] = 4000,
        max_body: Annotated[int, typer.Option(help="Largest request body, bytes.", min=1)] = 32 * 1024 * 1024,
        max_pixels: Annotated[int, typer.Option(help="Largest image, pixels (read from its header).", min=1)] = (
            50_000_000
        ),
        timeout: Annotated[float, typer.Option(help="Seconds an image check may take before a 503.", min=0.1)] = 10.0,
        stage: Annotated[
            bool,
            typer.Option(
                "--stage/--no-stage", help="Build a newly imported version's index before its reload (more memory)."
            ),
        ] = True,
        access_log: Annotated[
            bool, typer.Option("--access-log/--no-access-log", help="JSON access log on stderr.")
        ] = True,
        screen: Annotated[
            bool,
            typer.Option("--screen", help="Image checks also run the screening classifier (as scan --screen)."),
        ] = False,
        classifier: Annotated[
            list[str] | None,
            typer.Option(
                "--classifier", help="With --screen: classifier name or model config file (default open_nsfw)."
            ),
        ] = None,
        policy: Annotated[
            str | None,
            typer.Option("--policy", help="Verdict policy: default | strict (review is removed) | FILE.toml."),
        ] = None,
    ) -> None:
        """Serve checks over HTTP: images, hashes, URLs and prompts against the banks, with API keys
        (`cleanset keys create`). Answers name matches by bank, version, entry id and distance, never by value."""
        from cleanset.cli.options import check_banks
        from cleanset.service.app import screening_of
        from cleanset.service.limits import Limits
        from cleanset.service.run import serve as run
        from cleanset.service.settings import Settings

        if classifier and not screen:
            raise typer.BadParameter("--classifier needs --screen")
        check_banks(bank)
        limits = Limits(rate=rate, burst=burst, max_body=max_body, max_pixels=max_pixels, timeout_s=timeout)
        classifiers = tuple(v.strip() for item in classifier or () for v in item.split(",") if v.strip())
        settings = Settings(
            banks=tuple(bank),
            limits=limits,
            access_log=access_log,
            stage_imports=stage,
            screen=screen,
            classifiers=classifiers,
            policy=policy,
        )
        # Here too, not only in each worker: a missing model or policy file stops the command with its message,
        # where a worker failing to start would only be restarted by uvicorn.
        screening_of(settings)
        shown = " with screening" if screen else ""
        typer.echo(f"cleanset serving {', '.join(bank)}{shown} on http://{host}:{port} (OpenAPI at /docs)", err=True)
        run(settings, host, port, workers)
