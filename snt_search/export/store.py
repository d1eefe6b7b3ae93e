"""Where a study keeps its models: an Optuna artifact store named by a folder or an S3 URL.

``open_store("runs/s/artifacts")`` is Optuna's ``FileSystemArtifactStore`` on that folder;
``open_store("s3://bucket/prefix")`` is Optuna's ``Boto3ArtifactStore`` on the bucket, every
artifact under ``prefix/`` (boto3 is imported only then, and reads its credentials the usual
way: environment, ``~/.aws``, instance role). :class:`AnyOfStores` reads from several stores
(optuna-dashboard serving a storage whose studies keep models in different places).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

from ..optuna_compat import ArtifactStore

__all__ = ["AnyOfStores", "PrefixedStore", "open_store", "store_url"]


def store_url(url: str | Path) -> str:
    """The canonical spelling of a store: an absolute folder path, or the S3 URL as given."""
    text = str(url)
    return text if "://" in text else str(Path(text).expanduser().resolve())


def open_store(url: str | Path, *, create: bool = True) -> ArtifactStore:
    """The artifact store ``url`` names; ``create=False`` refuses a folder that is missing."""
    text = str(url)
    if text.startswith("s3://"):
        return _s3(text)
    if "://" in text:
        raise ValueError(
            f"--artifacts {text!r}: not a folder or an s3:// URL. Fix: pass a folder "
            "(default runs/<study>/artifacts) or s3://bucket/prefix."
        )
    from optuna.artifacts import FileSystemArtifactStore

    folder = Path(text).expanduser()
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        raise FileNotFoundError(
            f"artifact store {folder} does not exist. Fix: pass the --artifacts folder the "
            "study stored its models in (default runs/<study>/artifacts, relative to where "
            "`snt-search study` ran)."
        )
    return FileSystemArtifactStore(folder)


class PrefixedStore:
    """An artifact store that keeps every artifact of ``inner`` under ``prefix``."""

    def __init__(self, inner: Any, prefix: str) -> None:
        self.inner, self.prefix = inner, prefix.strip("/") + "/" if prefix.strip("/") else ""

    def open_reader(self, artifact_id: str) -> BinaryIO:
        reader: BinaryIO = self.inner.open_reader(self.prefix + artifact_id)
        return reader

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self.inner.write(self.prefix + artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        self.inner.remove(self.prefix + artifact_id)


class AnyOfStores:
    """Reads an artifact from the first of ``stores`` that has it; removes it from all;
    writes to the first. ``ArtifactNotFound`` when none has it."""

    def __init__(self, stores: list[Any]) -> None:
        if not stores:
            raise ValueError("AnyOfStores needs at least one store")
        self.stores = stores

    def open_reader(self, artifact_id: str) -> BinaryIO:
        from optuna.artifacts.exceptions import ArtifactNotFound

        for store in self.stores:
            try:
                reader: BinaryIO = store.open_reader(artifact_id)
                return reader
            except ArtifactNotFound:
                continue
        raise ArtifactNotFound(f"artifact {artifact_id} is in none of {len(self.stores)} stores")

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self.stores[0].write(artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        from optuna.artifacts.exceptions import ArtifactNotFound

        for store in self.stores:
            try:
                store.remove(artifact_id)
            except ArtifactNotFound:
                continue


def _s3(url: str) -> ArtifactStore:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"--artifacts {url!r}: no bucket. Fix: s3://bucket/prefix.")
    import optuna.artifacts

    try:
        store = optuna.artifacts.Boto3ArtifactStore(bucket)
    except ImportError as exc:
        raise ValueError(
            f"--artifacts {url!r} needs boto3, which is not installed ({exc}). "
            "Fix: pip install boto3, or store models in a folder."
        ) from None
    return PrefixedStore(store, prefix)
