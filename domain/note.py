"""C2SP signed notes and tlog checkpoints, Ed25519 (the Go ``golang.org/x/mod/sumdb/note`` format).

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> <base64(4-byte key id ‖ signature)>`` (U+2014 EM DASH). An Ed25519 key's id is
the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key); its verifier key is written
``name+<8 hex key id>+base64(0x01 ‖ public key)``, its signer key
``PRIVATE+KEY+name+<hex key id>+base64(0x01 ‖ seed)``. Signatures by keys the reader does not
know (a witness's cosignature, say) are kept as ``unverified``, never refused.

A checkpoint (C2SP tlog-checkpoint) is a note whose text is the origin line, the tree size in
decimal, the base64 root hash, and optional extension lines.

Pure computation: the signing key comes in as bytes; nothing here reads files or clocks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 0x01
DASH = "\u2014"
MAX_SIGNATURES = 100


class NoteError(ValueError):
    """A malformed note, key or checkpoint, or a signature that does not verify."""


def _valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() or c == "+" for c in name) and name.isprintable()


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> bytes:
    """The 4-byte key id: SHA-256(name ‖ 0x0A ‖ alg ‖ key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    name: str
    public_key: bytes  # 32 bytes (Ed25519)

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
            return True
        except (InvalidSignature, ValueError):
            return False

    def text(self) -> str:
        """``name+hex(keyid)+base64(0x01 ‖ public key)``."""
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()}"

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        name, _, rest = vkey.partition("+")
        hexid, _, b64 = rest.partition("+")
        if not _valid_name(name) or not re.fullmatch(r"[0-9a-f]{8}", hexid):
            raise NoteError("malformed verifier key")
        raw = _b64(b64)
        if raw is None or len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("malformed verifier key (an Ed25519 key is 0x01 and 32 bytes)")
        v = cls(name, raw[1:])
        if v.key_id.hex() != hexid:
            raise NoteError("verifier key: the key id does not match the name and key")
        return v


@dataclass(frozen=True)
class Signer:
    name: str
    seed: bytes  # the 32-byte Ed25519 private key

    def __post_init__(self) -> None:
        if not _valid_name(self.name):
            raise NoteError(f"invalid key name {self.name!r}")
        if len(self.seed) != 32:
            raise NoteError("an Ed25519 private key is 32 bytes")

    @classmethod
    def generate(cls, name: str, seed: bytes) -> Signer:
        """From 32 random bytes the caller supplies (the domain draws no randomness itself)."""
        return cls(name, seed)

    @property
    def _key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_key(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def text(self) -> str:
        """``PRIVATE+KEY+name+hex(keyid)+base64(0x01 ‖ seed)``."""
        return (f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+"
                f"{base64.b64encode(bytes([ALG_ED25519]) + self.seed).decode()}")

    @classmethod
    def parse(cls, skey: str) -> Signer:
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not re.fullmatch(r"[0-9a-f]{8}", parts[3]):
            raise NoteError("malformed signer key")
        raw = _b64(parts[4])
        if raw is None or len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("malformed signer key")
        signer = cls(parts[2], raw[1:])
        if signer.verifier.key_id.hex() != parts[3]:
            raise NoteError("signer key: the key id does not match")
        return signer


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes  # after the key id

    def line(self) -> str:
        return f"{DASH} {self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


@dataclass(frozen=True)
class Note:
    text: str
    verified: tuple[Signature, ...] = ()
    unverified: tuple[Signature, ...] = field(default=())


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def sign(text: str, *signers: Signer) -> str:
    """The signed note: the text, a blank line, one signature line per signer."""
    _check_text(text)
    if not signers:
        raise NoteError("a note needs a signer")
    message = text.encode()
    lines = "".join(Signature(s.name, s.verifier.key_id, s.sign(message)).line() for s in signers)
    return text + "\n" + lines


def _check_text(text: str) -> None:
    if not text.endswith("\n") or "\x00" in text or any(c != "\n" and not c.isprintable() and c != "\t"
                                                         for c in text):
        raise NoteError("malformed note: the text must be printable and end with a newline")


def parse(note: str | bytes) -> tuple[str, list[Signature]]:
    """The text and every signature line (nothing verified): the split is at the last blank line."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("malformed note: not UTF-8") from None
    if not note.endswith("\n"):
        raise NoteError("malformed note: it must end with a newline")
    at = note.rfind("\n\n")
    if at < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, sigblock = note[:at + 1], note[at + 2:]
    _check_text(text)
    sigs: list[Signature] = []
    for line in sigblock.split("\n")[:-1]:
        m = re.fullmatch(DASH + r" (\S+) (\S+)", line)
        if not m or not _valid_name(m.group(1)):
            raise NoteError(f"malformed note: not a signature line: {line[:80]!r}")
        raw = _b64(m.group(2))
        if raw is None or len(raw) < 5:
            raise NoteError("malformed note: a signature is base64 of a key id and the signature")
        sigs.append(Signature(m.group(1), raw[:4], raw[4:]))
    if not sigs:
        raise NoteError("malformed note: no signature lines")
    if len(sigs) > MAX_SIGNATURES:
        raise NoteError("malformed note: too many signatures")
    return text, sigs


def verify(note: str | bytes, *verifiers: Verifier) -> Note:
    """Check the signatures of the keys given; others (cosignatures, unknown keys) are kept as
    unverified. A known key's bad signature, or no known signature at all, raises NoteError."""
    text, sigs = parse(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    good: list[Signature] = []
    other: list[Signature] = []
    for s in sigs:
        v = known.get((s.name, s.key_id))
        if v is None:
            if s not in other:
                other.append(s)
            continue
        if not v.verify(text.encode(), s.signature):
            raise NoteError(f"invalid signature for key {s.name}+{s.key_id.hex()}")
        if s not in good:
            good.append(s)
    if not good:
        raise NoteError("note has no verifiable signatures")
    return Note(text, tuple(good), tuple(other))


# -- tlog checkpoints ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointBody:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        if not self.origin or "\n" in self.origin or self.size < 0 or len(self.root) != 32:
            raise NoteError("a checkpoint needs an origin line, a size >= 0 and a 32-byte root")
        ext = "".join(f"{line}\n" for line in self.extensions)
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n{ext}"

    @classmethod
    def parse(cls, text: str) -> CheckpointBody:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("malformed checkpoint: origin, size and root lines")
        origin, size, root_b64 = lines[0], lines[1], lines[2]
        if not origin or not re.fullmatch(r"0|[1-9][0-9]*", size):
            raise NoteError("malformed checkpoint: the size is a decimal without leading zeros")
        root = _b64(root_b64)
        if root is None or len(root) != 32:
            raise NoteError("malformed checkpoint: the root is base64 of 32 bytes")
        ext = tuple(lines[3:-1])
        if any(not line for line in ext):
            raise NoteError("malformed checkpoint: an empty extension line")
        return cls(origin, int(size), root, ext)


def sign_checkpoint(body: CheckpointBody, signer: Signer) -> str:
    return sign(body.text(), signer)


def verify_checkpoint(note: str | bytes, verifier: Verifier, origin: str | None = None) -> CheckpointBody:
    """The checkpoint a note carries, once the log's signature verifies (cosignatures tolerated)."""
    checked = verify(note, verifier)
    body = CheckpointBody.parse(checked.text)
    if origin is not None and body.origin != origin:
        raise NoteError(f"checkpoint of origin {body.origin!r}, expected {origin!r}")
    return body
