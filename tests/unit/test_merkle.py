"""RFC 6962 / RFC 9162 Merkle trees: the reference vectors, the worked 7-leaf example, and
properties over random trees (every proof verifies; any flipped byte fails)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings, strategies as st

from domain import merkle
from domain.merkle import CompactRange, consistency_proof, inclusion_proof, leaf_hash, node_hash

# transparency-dev/merkle testonly/constants.go: LeafInputs, NodeHashes, RootHashes (RFC 6962 SHA-256).
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]
H = bytes.fromhex
NODES = [
    [H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
     H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
     H("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
     H("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
     H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
     H("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
     H("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
     H("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1")],
    [H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
     H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
     H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
     H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0")],
    [H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
     H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")],
    [H("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]
ROOTS = [H("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
         H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
         H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
         H("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
         H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
         H("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
         H("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
         H("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
         H("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
# transparency-dev/merkle testonly/reference_test.go: TestRefInclusionProof / TestRefConsistencyProof.
INCLUSION = [(0, 1, []), (0, 2, [NODES[0][1]]), (1, 2, [NODES[0][0]]), (2, 3, [NODES[1][0]]),
             (1, 5, [NODES[0][0], NODES[1][1], NODES[0][4]]), (0, 8, [NODES[0][1], NODES[1][1], NODES[2][1]]),
             (5, 8, [NODES[0][4], NODES[1][3], NODES[2][0]])]
CONSISTENCY = [(1, 1, []), (1, 8, [NODES[0][1], NODES[1][1], NODES[2][1]]), (2, 5, [NODES[1][1], NODES[0][4]]),
               (6, 8, [NODES[1][2], NODES[1][3], NODES[2][0]])]

HASHED = [leaf_hash(d) for d in LEAVES]


def test_leaf_and_node_hashes_match_the_reference():
    assert HASHED == NODES[0]
    for level in range(1, 4):
        assert [node_hash(NODES[level - 1][2 * i], NODES[level - 1][2 * i + 1])
                for i in range(len(NODES[level]))] == NODES[level]


def test_roots_of_every_size_match_the_reference():
    assert merkle.root([]) == hashlib.sha256(b"").digest() == ROOTS[0]
    for n in range(9):
        assert merkle.root(HASHED[:n]) == ROOTS[n], n


@pytest.mark.parametrize("index,size,want", INCLUSION)
def test_inclusion_proofs_match_the_reference(index, size, want):
    proof = inclusion_proof(HASHED, index, size)
    assert proof == want
    assert merkle.verify_inclusion(index, size, HASHED[index], proof, ROOTS[size])


@pytest.mark.parametrize("first,second,want", CONSISTENCY)
def test_consistency_proofs_match_the_reference(first, second, want):
    proof = consistency_proof(HASHED, first, second)
    assert proof == want
    assert merkle.verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)


def test_the_rfc_worked_example_of_seven_leaves():
    """RFC 6962 §2.1.3: leaves a..g; inclusion of a is [b, i, l], consistency 3 -> 7 is [c, d, h, l]
    (h = node(a, b), i = node(c, d), l = node(node(e, f), g))."""
    a, b, c, d, e, f, g = HASHED[:7]
    h, i = node_hash(a, b), node_hash(c, d)
    j = node_hash(e, f)
    l_ = node_hash(j, g)
    assert (h, i, j) == (NODES[1][0], NODES[1][1], NODES[1][2])
    assert inclusion_proof(HASHED, 0, 7) == [b, i, l_]
    assert consistency_proof(HASHED, 3, 7) == [c, d, h, l_]
    assert merkle.verify_inclusion(0, 7, a, [b, i, l_], ROOTS[7])
    assert merkle.verify_consistency(3, 7, ROOTS[3], ROOTS[7], [c, d, h, l_])
    # Consistency 4 -> 7 is [l] (4 is a power of two: its root k is a node of the 7-tree).
    assert consistency_proof(HASHED, 4, 7) == [l_]
    assert merkle.verify_consistency(4, 7, ROOTS[4], ROOTS[7], [l_])


def test_compact_range_reports_every_finished_node_and_round_trips():
    cr = CompactRange()
    seen = {}
    for leaf in HASHED:
        for level, index, digest in cr.append(leaf):
            seen[(level, index)] = digest
        assert cr.root() == ROOTS[cr.size]
        again = CompactRange.load(cr.size, cr.dump())
        assert again.root() == cr.root()
    assert seen == {(lv, i): NODES[lv][i] for lv in range(1, 4) for i in range(len(NODES[lv]))}
    with pytest.raises(ValueError):
        CompactRange(3, [HASHED[0]])  # 3 leaves need 2 hashes


def test_proofs_of_what_cannot_exist_are_refused():
    with pytest.raises(merkle.ProofError):
        inclusion_proof(HASHED, 7, 7)
    with pytest.raises(merkle.ProofError):
        consistency_proof(HASHED, 5, 4)
    assert not merkle.verify_inclusion(7, 7, HASHED[0], [], ROOTS[7])
    assert not merkle.verify_consistency(5, 4, ROOTS[5], ROOTS[4], [])
    assert not merkle.verify_consistency(3, 7, ROOTS[3], ROOTS[7], [])  # 3 < 7 needs a proof
    assert merkle.verify_consistency(0, 7, ROOTS[0], ROOTS[7], [])


def _flip(proof, which, byte):
    proof = [bytearray(p) for p in proof]
    proof[which][byte] ^= 0x01
    return [bytes(p) for p in proof]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70), st.data())
def test_every_proof_over_a_random_tree_verifies_and_any_flipped_byte_fails(leaves, data):
    hashed = [leaf_hash(x) for x in leaves]
    n = len(hashed)
    roots = [merkle.root(hashed[:k]) for k in range(n + 1)]
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(hashed, index, size)
    assert len(proof) <= (size - 1).bit_length()
    assert merkle.verify_inclusion(index, size, hashed[index], proof, roots[size])
    assert not merkle.verify_inclusion(index, size, hashed[index], proof, _flip([roots[size]], 0, 0)[0])
    if proof:
        w = data.draw(st.integers(0, len(proof) - 1))
        b = data.draw(st.integers(0, 31))
        assert not merkle.verify_inclusion(index, size, hashed[index], _flip(proof, w, b), roots[size])
        assert not merkle.verify_inclusion(index, size, hashed[index], proof[:-1], roots[size])
    assert not merkle.verify_inclusion(index, size, _flip([hashed[index]], 0, data.draw(st.integers(0, 31)))[0],
                                       proof, roots[size])
    if size > 1:
        other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
        assert not merkle.verify_inclusion(other, size, hashed[index], proof, roots[size]) or hashed[other] == hashed[index]

    first = data.draw(st.integers(1, size))
    cproof = consistency_proof(hashed, first, size)
    assert len(cproof) <= (size - 1).bit_length() + 1
    assert merkle.verify_consistency(first, size, roots[first], roots[size], cproof)
    if cproof:
        w = data.draw(st.integers(0, len(cproof) - 1))
        b = data.draw(st.integers(0, 31))
        assert not merkle.verify_consistency(first, size, roots[first], roots[size], _flip(cproof, w, b))
    if first < size:
        assert not merkle.verify_consistency(first, size, _flip([roots[first]], 0, 5)[0], roots[size], cproof)
        assert not merkle.verify_consistency(first, size, roots[first], _flip([roots[size]], 0, 9)[0], cproof)
