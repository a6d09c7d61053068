"""Where results live: a local folder or an object store (``s3://BUCKET/PREFIX``, ``gs://BUCKET/PREFIX``).

:func:`storage_path` turns a ``--storage`` value into a path object: a :class:`pathlib.Path` for a
local folder (or ``file://`` URI), an :class:`ObjectPath` for an object store. ``ObjectPath`` has the
small part of the ``pathlib`` interface that :mod:`rsng.results` uses (``/``, ``name``, ``stem``,
``suffix``, ``parent``, ``exists``, ``is_file``, ``is_dir``, ``iterdir``, ``read_bytes``,
``write_bytes``, ``unlink``) on a :mod:`pyarrow.fs` file system, so the writers and the loader treat
both alike.

Credentials and endpoints are taken the way pyarrow and the cloud SDKs take them — nothing is read
from rsng's own options: for S3 ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``,
``~/.aws/credentials``, an instance/pod IAM role (IMDS, IRSA web identity), ``AWS_ENDPOINT_URL``
for S3-compatible servers (MinIO, Ceph, moto), ``AWS_DEFAULT_REGION``; for GCS the application
default credentials (``GOOGLE_APPLICATION_CREDENTIALS`` or the metadata server: workload identity).

Atomicity on an object store (there is no rename): every object is written once, complete, under its
final name — the bytes are serialised in memory first and then uploaded by one output stream whose
upload only becomes visible when it completes (an S3 PUT / completed multipart upload, a finalised
GCS upload). A writer killed mid-upload leaves no visible object; rewriting the same name (a retried
chunk, a resumed trial) replaces it whole. Readers list the folder and ignore names starting with
``.`` or ``_``, as on local disk.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

__all__ = ["ACCEPTED_STORAGE", "SCHEMES", "ObjectPath", "is_remote", "storage_path"]

#: URI schemes of the object stores rsng writes to (``gcs`` is an alias of ``gs``).
SCHEMES = ("s3", "gs", "gcs")
#: How accepted ``--storage`` values are described in error messages.
ACCEPTED_STORAGE = "a local folder, s3://BUCKET[/PREFIX] or gs://BUCKET[/PREFIX]"
_URI_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):(?P<rest>.*)$", re.DOTALL)
_FILESYSTEMS: dict[tuple[str, str], Any] = {}


class ObjectPath:
    """A key (or key prefix, a "folder") in an object-store bucket, with a ``pathlib``-like interface.

    ``str()`` gives the URI (``s3://bucket/key``); :attr:`fs` and :attr:`path` (``bucket/key``) are
    what :mod:`pyarrow.fs` and Ray Tune's ``storage_filesystem``/``storage_path`` take.
    """

    __slots__ = ("_fs", "_type", "path", "scheme")

    def __init__(self, scheme: str, path: str, fs: Any = None, _type: Any = None):
        self.scheme = "gs" if scheme == "gcs" else scheme
        self.path = "/".join(p for p in path.split("/") if p)
        self._fs = fs
        self._type = _type  # pyarrow FileType from a listing (saves a request per is_dir/is_file)

    # -- naming -------------------------------------------------------------------------------------
    @property
    def fs(self):
        if self._fs is None:
            self._fs = _filesystem(self.scheme, self.bucket)
        return self._fs

    @property
    def bucket(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def key(self) -> str:
        return self.path.split("/", 1)[1] if "/" in self.path else ""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        name = self.name
        i = name.rfind(".")
        return name[i:] if 0 < i < len(name) - 1 else ""

    @property
    def stem(self) -> str:
        suffix = self.suffix
        return self.name[: -len(suffix)] if suffix else self.name

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(self.scheme, self.path.rsplit("/", 1)[0] if "/" in self.path else self.path, self._fs)

    @property
    def parents(self) -> list[ObjectPath]:
        out, p = [], self
        while "/" in p.path:
            p = p.parent
            out.append(p)
        return out

    def __truediv__(self, other: str | os.PathLike) -> ObjectPath:
        return ObjectPath(self.scheme, f"{self.path}/{os.fspath(other)}", self._fs)

    def with_name(self, name: str) -> ObjectPath:
        return self.parent / name

    def resolve(self) -> ObjectPath:
        return self

    absolute = expanduser = resolve

    def __str__(self) -> str:
        return f"{self.scheme}://{self.path}"

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and (self.scheme, self.path) == (other.scheme, other.path)

    def __lt__(self, other: ObjectPath) -> bool:
        return (self.scheme, self.path) < (other.scheme, other.path)

    def __hash__(self) -> int:
        return hash((self.scheme, self.path))

    # -- queries ------------------------------------------------------------------------------------
    def _info_type(self):
        if self._type is None:
            return self.fs.get_file_info(self.path).type
        return self._type

    def exists(self) -> bool:
        from pyarrow.fs import FileType

        return self._info_type() != FileType.NotFound

    def is_file(self) -> bool:
        from pyarrow.fs import FileType

        return self._info_type() == FileType.File

    def is_dir(self) -> bool:
        from pyarrow.fs import FileType

        return self._info_type() == FileType.Directory

    def iterdir(self) -> list[ObjectPath]:
        """The direct children (one listing request per 1000 keys); empty if there are none."""
        from pyarrow.fs import FileSelector

        infos = self.fs.get_file_info(FileSelector(self.path, allow_not_found=True, recursive=False))
        return [ObjectPath(self.scheme, i.path, self._fs, i.type) for i in infos]

    # -- I/O ----------------------------------------------------------------------------------------
    def read_bytes(self) -> bytes:
        try:
            with self.fs.open_input_stream(self.path) as f:
                return f.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"{self} does not exist") from None

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> int:
        """Upload ``data`` as this object in one go; it becomes visible, whole, when the upload completes."""
        f = self.fs.open_output_stream(self.path, metadata={})
        f.write(data)
        f.close()
        self._type = None
        return len(data)

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.delete_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: object stores have no folders (keys are created with their objects)."""


def is_remote(path: Any) -> bool:
    return isinstance(path, ObjectPath)


def storage_path(value: str | os.PathLike | ObjectPath) -> Path | ObjectPath:
    """A ``--storage`` value (or a sweep folder) as a path: ``Path`` for local, :class:`ObjectPath` for URIs.

    Raises ``ValueError`` naming the accepted forms for an unknown scheme (``ftp://…``), a
    malformed object-store URI (``s3:/bucket``, ``s3://``, a query string) — so a URI is never taken
    for a local folder named ``s3:``. No request is made.
    """
    if isinstance(value, (Path, ObjectPath)):
        return value
    text = os.fspath(value)
    m = _URI_RE.match(text)
    if m is None or len(m["scheme"]) == 1:  # no scheme, or a Windows drive letter
        return Path(text)
    scheme, rest = m["scheme"].lower(), m["rest"]
    if scheme == "file":
        if not rest.startswith("//"):
            raise ValueError(f"malformed file URI {text!r}; use file:///ABSOLUTE/PATH or a plain folder")
        return Path(rest[2:] if rest.startswith("///") else "/" + rest[2:])
    if scheme not in SCHEMES:
        if "/" not in text.split(":", 1)[0] and (rest.startswith("//") or scheme in ("http", "https", "hdfs")):
            raise ValueError(f"unsupported scheme {scheme!r} in {text!r}; accepted: {ACCEPTED_STORAGE}")
        return Path(text)  # e.g. a local folder "run:3"
    if not rest.startswith("//"):
        raise ValueError(f"malformed URI {text!r} (expected {scheme}://BUCKET[/PREFIX]); accepted: {ACCEPTED_STORAGE}")
    body = rest[2:]
    if "?" in body or "#" in body:
        raise ValueError(
            f"{text!r}: query strings are not taken; give endpoints and credentials through the "
            "environment (AWS_ENDPOINT_URL, AWS_PROFILE, GOOGLE_APPLICATION_CREDENTIALS, …)"
        )
    bucket = body.split("/", 1)[0]
    if not bucket:
        raise ValueError(f"no bucket in {text!r} (expected {scheme}://BUCKET[/PREFIX]); accepted: {ACCEPTED_STORAGE}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]", bucket):
        raise ValueError(
            f"{bucket!r} in {text!r} is not a valid bucket name (3–63 lower-case letters, digits, '.', '-', '_')"
        )
    return ObjectPath(scheme, body)


def _filesystem(scheme: str, bucket: str):
    """The pyarrow file system of a bucket (one per process and bucket; credentials from the environment)."""
    key = (scheme, bucket)
    fs = _FILESYSTEMS.get(key)
    if fs is None:
        from pyarrow.fs import FileSystem

        fs, _ = FileSystem.from_uri(f"{scheme}://{bucket}/")
        _FILESYSTEMS[key] = fs
    return fs


def check_object_store(path: ObjectPath, timeout_s: float = 30.0) -> None:
    """Make sure ``path``'s bucket exists and takes writes, with credentials found; raise ``ValueError`` if not.

    A hidden probe object (``.rsng-write-test-…``) is written and deleted. For S3 the credential chain
    is checked first with botocore when installed (environment, profile, IAM role, web identity), so
    a machine without credentials is told so instead of sending anonymous requests. The requests run
    with a deadline of ``timeout_s`` (an unreachable endpoint would otherwise be retried for minutes).
    """
    import threading
    import uuid

    if path.scheme == "s3":
        _check_aws_credentials()

    def probe() -> None:
        from pyarrow.fs import FileType

        fs = path.fs
        if fs.get_file_info(path.bucket).type == FileType.NotFound:
            raise ValueError(
                f"bucket {path.bucket!r} does not exist (or these credentials may not see it; "
                f"endpoint {_endpoint(path)})"
            )
        if fs.get_file_info(path.path).type == FileType.File:
            raise ValueError(f"{path} is an object, not a prefix (folder)")
        test = path / f".rsng-write-test-{uuid.uuid4().hex[:12]}"
        test.write_bytes(b"rsng")
        test.unlink(missing_ok=True)

    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            probe()
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - handed to the caller below
            outcome.append(e)

    # a daemon thread: a request the SDK keeps retrying must not hold up the exit of a refused sweep
    thread = threading.Thread(target=run, name="rsng-storage-check", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not outcome:
        raise ValueError(
            f"{path}: no answer from the object store within {timeout_s:.0f} s (endpoint {_endpoint(path)})"
        )
    e = outcome[0]
    if isinstance(e, ValueError):
        raise e
    if e is not None:  # pyarrow raises OSError with the SDK's message
        msg = " ".join(str(e).split())
        raise ValueError(f"{path} cannot be written (endpoint {_endpoint(path)}): {msg[:300]}") from None


def _endpoint(path: ObjectPath) -> str:
    if path.scheme == "s3":
        return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3"
    return os.environ.get("STORAGE_EMULATOR_HOST") or "Google Cloud Storage"


def _check_aws_credentials() -> None:
    try:
        import botocore.session
    except ImportError:  # pragma: no cover - botocore comes with the service extra
        return
    try:
        creds = botocore.session.Session().get_credentials()
    except Exception as e:  # noqa: BLE001 - a broken profile or config file
        raise ValueError(f"AWS credentials could not be read: {' '.join(str(e).split())[:300]}") from None
    if creds is None:
        raise ValueError(
            "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, "
            "or run on a node with an IAM role / IRSA web identity)"
        )
