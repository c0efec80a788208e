"""``loa pull``: the pull API from a commune PC that has Loa installed, run from cron.

A thin user of the protocol's client (``loa_protocol.client``): it asks the server who
its token belongs to, fetches the signed manifests of today and tomorrow (and of the
emergency bulletins in force), checks each against the deployment's public key
(``--key``) — an unsigned, tampered, expired or other-endpoint manifest is refused and
the last good program stays in place — and downloads only the files it lacks, resumed,
checked, renamed into place, the manifest last. The commune's player that runs on its
own, offline, is ``loa-device`` (docs/device.md); this command stays for PCs that run
the whole of Loa.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import httpx
from loa_protocol.client import PullClient, PullReport, checked, sync_folder
from loa_protocol.errors import LinkError, ServerError, TokenRefused

from pipeline.errors import DeliveryError, TransientDeliveryError, UsageError
from pipeline.signing import PublicKey

__all__ = ["PullClient", "PullReport", "checked", "pull", "sync_folder"]


def pull(
    server: str,
    token: str,
    to: Path,
    *,
    key: PublicKey,
    dates: Sequence[dt.date] = (),
    timeout_s: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> PullReport:
    """Fetch what is missing for ``dates`` (default: the server's today and tomorrow) into ``to``.

    Only programs signed with ``key`` (the deployment's public key) are taken.
    """
    client = PullClient(server, token, timeout_s=timeout_s, transport=transport, user_agent="loa-pull")
    report = PullReport()
    try:
        me = client.whoami()
        endpoint = str(me["endpoint"])
        report.endpoint = endpoint
        if not dates:
            today = dt.date.fromisoformat(str(me["today"]))
            dates = (today, today + dt.timedelta(days=1))
        to.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        folders = [str(item["folder"]) for item in client.emergencies(endpoint)]
        folders += [f"programs/{day.isoformat()}" for day in dates]
        for folder in folders:
            signed = client.signed(endpoint, folder)
            if signed is None:
                report.not_built.append(folder.removeprefix("programs/"))
                continue
            sync_folder(client, endpoint, folder, signed, to, report, key=key, now=now)
    except TokenRefused as exc:
        raise UsageError(str(exc), code="pull.token_refused") from exc
    except LinkError as exc:
        raise TransientDeliveryError(str(exc)) from exc
    except ServerError as exc:
        raise DeliveryError(str(exc)) from exc
    finally:
        client.close()
    return report
