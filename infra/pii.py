"""Personal data (applicant name, ID number, phone) sealed with AES-GCM before it is stored.

Sealing per field group (not only whole-store encryption) lets the API unseal for officers
alone, and later lets a key be destroyed to forget one applicant (crypto-shredding).
"""

from __future__ import annotations

import base64
import binascii
import os

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "pii1:"


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the personal-data key must be 32 bytes (base64 of 32 random bytes)")
        self._aead = AESGCM(key)

    @staticmethod
    def new_key() -> bytes:
        return AESGCM.generate_key(bit_length=256)

    def seal(self, data: dict[str, str]) -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, orjson.dumps(data, option=orjson.OPT_SORT_KEYS), b"esup-applicant")
        return PREFIX + base64.urlsafe_b64encode(nonce + ct).decode()

    def open(self, sealed: str) -> dict[str, str]:
        if not isinstance(sealed, str) or not sealed.startswith(PREFIX):
            raise SealBroken("not sealed personal data")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(PREFIX):])
            return orjson.loads(self._aead.decrypt(raw[:12], raw[12:], b"esup-applicant"))
        except (InvalidTag, binascii.Error, ValueError) as exc:
            # AES-GCM authenticates: one changed byte anywhere makes the whole field unreadable.
            raise SealBroken(f"sealed personal data does not authenticate ({type(exc).__name__})") from None


class SealBroken(ValueError):
    """Sealed personal data that cannot be opened: damaged in the store, or another key."""
