"""Keyed pseudonyms for user names: the one home of the mapping, for importer and CLI alike.

``pseudonym(key, name)`` is ``"u_"`` + the first 16 hex digits (64 bits) of
HMAC-SHA256(`key`, UTF-8 `name`). Without the key nobody can tell which name a pseudonym
stands for, nor test a guessed name; with it the owner maps a name to its pseudonym
(``crossfade recommend --user NAME --pseudonym-key FILE``). Collision odds: for n distinct
names about n²/2^65, e.g. 3e-10 for 100,000 users and 3e-8 for a million; the importer checks
and fails rather than merge two users.

A key file holds 64 hex digits (a random 32-byte key) and a newline, mode 0600. The importer
writes it beside the imported data (by default ``<out>.pseudonym-key``, outside ``<out>``), never
into the folder the pipeline reads, so it reaches no pipeline output or model.

Only the standard library is imported here, so the CLI can map a name without pandas or
TensorFlow.
"""
import hashlib
import hmac
import os
import secrets

PREFIX = "u_"
HEX_DIGITS = 16  # 64 bits of the HMAC
KEY_BYTES = 32
KEY_SUFFIX = ".pseudonym-key"


class PseudonymKeyError(ValueError):
    """A key file that cannot be used: `path` names it, `message` says why."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def default_key_path(out_dir: str) -> str:
    """The key file beside `out_dir`: the sibling ``<out_dir>.pseudonym-key``."""
    return os.path.abspath(out_dir).rstrip(os.sep) + KEY_SUFFIX


def new_key() -> bytes:
    """A fresh random key of KEY_BYTES bytes."""
    return secrets.token_bytes(KEY_BYTES)


def pseudonym(key: bytes, name: str) -> str:
    """The pseudonym of user `name` under `key`: ``u_`` + 16 lowercase hex digits."""
    digest = hmac.new(key, name.encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:HEX_DIGITS]


def key_id(key: bytes) -> str:
    """A short public fingerprint of `key` (it reveals nothing about the key) for manifests."""
    return hashlib.sha256(b"crossfade-pseudonym-key-id:" + key).hexdigest()[:12]


def read_key(path: str) -> bytes:
    """The key in the key file `path`; PseudonymKeyError (naming `path`) if unusable."""
    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise PseudonymKeyError(path, f"cannot read the pseudonym key: {error}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise PseudonymKeyError(
            path, f"not a pseudonym key (expected {2 * KEY_BYTES} hex digits)")
    return key


def write_key(path: str, key: bytes) -> None:
    """Writes `key` to the new file `path` with mode 0600 (FileExistsError if it exists)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key.hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def pseudonym_for(key_path: str, name: str) -> str:
    """The pseudonym of `name` under the key in `key_path` (PseudonymKeyError if unusable)."""
    return pseudonym(read_key(key_path), name)
