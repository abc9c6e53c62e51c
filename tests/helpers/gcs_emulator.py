"""A local Google Cloud Storage server for the tests (gcp-storage-emulator, in memory, on 127.0.0.1), reached
through gcsfs with settings from the environment only, as a user's cluster would reach real GCS.

gcsfs is configured by environment variables, so that Ray workers started afterwards (and inheriting the
environment) reach the same server without litdata passing anything:
- STORAGE_EMULATOR_HOST points gcsfs at the server instead of storage.googleapis.com;
- FSSPEC_GS_TOKEN is fsspec's per-protocol setting of gcsfs's `token`: a raw access token, sent as a bearer
  header (the emulator accepts any), which stands for the user's secret in the tests;
- FETCH_RAW_TOKEN_EXPIRY=false: gcsfs would otherwise ask oauth2.googleapis.com when that token expires;
- GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false: gcsfs would otherwise ask the storage-control gRPC API for each
  bucket's layout, which the emulator does not serve (a 60 s timeout per bucket, then a fallback).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gcs_emulator(token: str) -> Iterator[Any]:
    """Starts the server, sets the environment above (restored afterwards) and yields a gcsfs filesystem."""
    import fsspec
    from gcp_storage_emulator.server import create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    env = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}", "FSSPEC_GS_TOKEN": token,
           "FETCH_RAW_TOKEN_EXPIRY": "false", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    saved_env = {k: os.environ.get(k) for k in env}
    saved_conf = fsspec.config.conf.pop("gs", None)
    os.environ.update(env)
    fsspec.config.set_conf_env(fsspec.config.conf)  # fsspec read FSSPEC_* when it was imported, before this
    try:
        import gcsfs

        # Read when gcsfs is first imported: an earlier import without it would make every bucket cost 60 s.
        assert gcsfs.GCSFileSystem is gcsfs.core.GCSFileSystem, "gcsfs was imported before the emulator's settings"
        yield fsspec.filesystem("gs", skip_instance_cache=True)
    finally:
        fsspec.config.conf.pop("gs", None)
        if saved_conf is not None:
            fsspec.config.conf["gs"] = saved_conf
        for k, v in saved_env.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        server.stop()
