"""Transports: how files reach an endpoint (SFTP to a device, a local directory).

``open_transport(endpoint, settings=...)`` returns an unopened transport; use it as a
context manager::

    with open_transport(endpoint, settings=settings.deliver) as t:
        if t.file_size("media/ab12.mp3") is None:
            t.put_file(path, "media/ab12.mp3")
"""

from __future__ import annotations

from pipeline.config import DeliverSettings
from pipeline.errors import DeliveryError
from pipeline.models import Endpoint
from pipeline.transports.base import Transport, is_temp_name, temp_name
from pipeline.transports.local import LocalTransport
from pipeline.transports.sftp import SftpTransport, fingerprint

__all__ = [
    "LocalTransport",
    "SftpTransport",
    "Transport",
    "fingerprint",
    "is_temp_name",
    "open_transport",
    "temp_name",
]


def open_transport(endpoint: Endpoint, *, settings: DeliverSettings, create_root: bool = False) -> Transport:
    """The transport for ``endpoint`` (not yet connected: enter it with ``with``).

    ``create_root`` lets a local endpoint's directory be made if missing; an sftp
    endpoint's ``remote_dir`` must always exist on the device.
    """
    if endpoint.transport == "sftp":
        return SftpTransport(endpoint, settings=settings)
    if endpoint.transport == "local":
        return LocalTransport(endpoint, create_root=create_root)
    raise DeliveryError(
        f'{endpoint.name}: unknown transport {endpoint.transport!r}; use "sftp" or "local"',
        code="delivery.endpoint_config",
        endpoint=endpoint.name,
    )
