"""Loa's open protocol: what the server and any player on a commune's endpoint share.

- ``loa_protocol.manifest``: the signed manifest ``loa.manifest/2`` (types, reader, writer);
- ``loa_protocol.signature``: Ed25519 signature checks with the deployment's public key;
- ``loa_protocol.receipts``: as-run receipts ``loa.receipt/1`` (HMAC-signed);
- ``loa_protocol.client``: the pull API's client (manifests, files, emergencies, receipts,
  heartbeat, enrollment, the server's time).

It imports nothing of the server (``pipeline``) and runs on Python 3.9 and newer.
docs/manifest.md is the specification a vendor implements from.
"""

from __future__ import annotations

__version__ = "0.1.0"
