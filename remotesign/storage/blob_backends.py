"""The blob store the settings name: the local disk (the default) or an S3-compatible bucket."""

from __future__ import annotations

from typing import TYPE_CHECKING

from remotesign.storage.blobs import BlobStore, LocalBlobStore
from remotesign.storage.faults import blob_faults
from remotesign.storage.private import DIR_MODE

if TYPE_CHECKING:
    from remotesign.config import Settings


def open_blob_store(settings: Settings) -> BlobStore:
    """Build the configured store and make it ready: the local directory exists, the S3 bucket is
    created if missing (idempotent); leftovers of writers that died are cleared (temporary files on
    disk, abandoned multipart uploads in S3). An unreachable S3 store raises StorageUnavailable."""
    if settings.blob_store == "s3":
        from remotesign.storage.s3_blobs import S3BlobStore  # boto3 is imported only by those who use it

        assert settings.s3_bucket, "load_settings requires REMOTESIGN_S3_BUCKET for the s3 store"
        if settings.s3_temp_dir is not None:  # created if missing (0700); an existing one is left as it is
            with blob_faults():
                settings.s3_temp_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        store = S3BlobStore(bucket=settings.s3_bucket, endpoint_url=settings.s3_endpoint,
                            access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                            region=settings.s3_region, prefix=settings.s3_prefix,
                            temp_dir=str(settings.s3_temp_dir) if settings.s3_temp_dir else None,
                            health_write_interval=settings.s3_health_write_interval_seconds)
        store.ensure_bucket()
        store.sweep_temporaries()
        return store
    local = LocalBlobStore(settings.blob_dir)
    local.sweep_temporaries()
    return local
