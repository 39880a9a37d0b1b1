"""C2SP signed notes and checkpoints against the Go sumdb/note test vectors."""

from __future__ import annotations

import base64

import pytest

from domain import note
from domain.note import CheckpointBody, NoteError, Signer, Verifier

# golang.org/x/mod/sumdb/note note_test.go (TestSign, TestOpen, TestVerifierList).
SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
SIGNED = TEXT + "\n" + PETER_SIG


def test_the_go_vector_signs_byte_identically_and_verifies():
    signer = Signer.parse(SKEY)
    assert signer.text() == SKEY
    assert signer.verifier.text() == VKEY  # key id c74f20a3 = SHA-256(name, 0x0A, 0x01, key)[:4]
    assert note.key_id("PeterNeumann", signer.public_key).hex() == "c74f20a3"
    assert note.sign(TEXT, signer) == SIGNED
    checked = note.verify(SIGNED, Verifier.parse(VKEY))
    assert checked.text == TEXT and [s.name for s in checked.verified] == ["PeterNeumann"]


def test_an_unknown_cosignature_is_kept_not_refused():
    peter, enoch = Verifier.parse(VKEY), Verifier.parse(ENOCH)
    checked = note.verify(TEXT + "\n" + PETER_SIG + ENOCH_SIG, peter)
    assert [s.name for s in checked.verified] == ["PeterNeumann"]
    assert [s.name for s in checked.unverified] == ["EnochRoot"]
    both = note.verify(TEXT + "\n" + PETER_SIG + ENOCH_SIG, peter, enoch)  # Enoch's signature is real too
    assert [s.name for s in both.verified] == ["PeterNeumann", "EnochRoot"]
    with pytest.raises(NoteError, match="no verifiable"):
        note.verify(TEXT + "\n" + ENOCH_SIG, peter)


@pytest.mark.parametrize("bad", [
    TEXT, TEXT + "\n", TEXT + "\n" + PETER_SIG[:-1], "\x01" + TEXT + "\n" + PETER_SIG,
    TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
    TEXT + "\n" + PETER_SIG + "Unexpected line.\n", TEXT + "\n" + PETER_SIG * 101,
])
def test_malformed_notes_are_refused(bad):
    with pytest.raises(NoteError):
        note.verify(bad, Verifier.parse(VKEY))


def test_a_changed_text_or_signature_fails():
    v = Verifier.parse(VKEY)
    with pytest.raises(NoteError, match="invalid signature"):
        note.verify(SIGNED.replace("problem,", "problem;"), v)
    with pytest.raises(NoteError, match="invalid signature"):
        note.verify(TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], v)


def test_mangled_verifier_keys_are_refused():
    for bad in (VKEY[:-1], VKEY.replace("c74f20a3", "c74f20a4"), "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="):
        with pytest.raises(NoteError):
            Verifier.parse(bad)


def test_a_checkpoint_round_trips_and_carries_extensions():
    signer = Signer.parse(SKEY)
    body = CheckpointBody("esup.cdgx/ledger", 7, bytes(range(32)), ("extra line",))
    text = body.text()
    assert text == f"esup.cdgx/ledger\n7\n{base64.b64encode(bytes(range(32))).decode()}\nextra line\n"
    signed = note.sign_checkpoint(body, signer)
    assert note.verify_checkpoint(signed, signer.verifier, origin="esup.cdgx/ledger") == body
    with pytest.raises(NoteError):
        note.verify_checkpoint(signed, signer.verifier, origin="esup.other/ledger")
    for bad in ("o\n07\nAAAA\n", "o\n7\n" + base64.b64encode(b"short").decode() + "\n", "\n7\nx\n"):
        with pytest.raises(NoteError):
            CheckpointBody.parse(bad)
