"""`governor console`: the web console on 127.0.0.1 for any governor API, the deployed one included.

    governor console --url https://<api-id>.execute-api.<region>.amazonaws.com/<stage> --sigv4 [--profile P]

The page is served here; every API call it makes is forwarded to --url, signed with your own AWS
credentials when --sigv4 is given (cli/console_server.py). Its address is the command's data line
on stdout; messages go to stderr.
"""

from __future__ import annotations

import webbrowser

import click

from cli.api import UNAVAILABLE, USAGE
from cli.context import CliError, Settings, info, pass_settings


@click.command()
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port on 127.0.0.1 (0: any free one)."
)
@click.option(
    "--open/--no-open", "open_browser", default=True, show_default=True, help="Open the console in your browser."
)
@pass_settings
def console(settings: Settings, port: int, open_browser: bool) -> None:
    """Serve the web console on 127.0.0.1, forwarding its API calls to --url (signed with --sigv4)."""
    from cli.console_server import ConsoleServer

    credentials, region = _signing(settings)
    try:
        server = ConsoleServer(settings.url, credentials=credentials, region=region, port=port)
    except ValueError as error:
        raise CliError(
            str(error), USAGE, hint="--url https://<api-id>.execute-api.<region>.amazonaws.com/<stage>"
        ) from None
    except OSError as error:
        raise CliError(
            f"port {port} on 127.0.0.1 is busy ({error.strerror})", USAGE, hint="pick another with --port, or 0"
        ) from None
    signed = f"signed as your AWS identity ({region})" if credentials is not None else "unsigned"
    click.echo(server.url)
    info(f"console for {settings.url} ({settings.url_source}), API calls {signed}")
    info("Ctrl-C stops.")
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _signing(settings: Settings) -> tuple[object | None, str]:
    """The operator's credentials (refreshed as they expire) and the region to sign for, with --sigv4."""
    # The API's own region first: a deployed URL names it, and a signature for another region is refused.
    region = settings.region or _region_of(settings.url)
    if not settings.sigv4:
        return None, region or "us-east-1"
    import boto3
    import botocore.exceptions

    try:
        session = boto3.Session(profile_name=settings.profile, region_name=settings.region)
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as error:
        raise CliError(f"cannot load AWS credentials: {error}", UNAVAILABLE) from None
    if credentials is None:
        raise CliError(
            "no AWS credentials to sign with", UNAVAILABLE, hint="configure a profile (aws configure) or pass --profile"
        )
    return credentials, region or session.region_name or "us-east-1"


def _region_of(url: str) -> str | None:
    """The region an execute-api URL names (https://<id>.execute-api.<region>.amazonaws.com/...)."""
    host = url.split("://", 1)[-1].split("/", 1)[0]
    parts = host.split(".")
    if len(parts) >= 4 and parts[1] == "execute-api":
        return parts[2]
    return None
