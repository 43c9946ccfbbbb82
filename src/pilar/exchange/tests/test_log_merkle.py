"""RFC 9162 hashing and proofs (translog.merkle) and the tlog stored-hash layout
(translog.tlog), against published vectors and an independent implementation (pymerkle).

The vectors are the Certificate Transparency reference data as published by
transparency-dev/merkle: ``testonly/constants.go`` (leaves, node hashes, roots for sizes 0..8)
and ``proof/verify_test.go`` (inclusion and consistency proofs; leaf numbers there are
1-based, here 0-based indexes)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pymerkle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pilar.exchange.translog import merkle, tlog
from pilar.exchange.translog.merkle import ProofError

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def h(value: str) -> bytes:
    return bytes.fromhex(value)


# (index, size, proof) — verify_test.go's inclusionProofs with 0-based indexes.
INCLUSION = [
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

LEAF_HASHES = [merkle.leaf_hash(leaf) for leaf in LEAVES]


def test_roots_match_the_reference_for_every_size() -> None:
    for size in range(0, 9):
        assert merkle.root(LEAF_HASHES[:size]) == ROOTS[size], size


def test_leaf_and_node_hashes_use_the_rfc_prefixes() -> None:
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest() == ROOTS[1]
    assert merkle.node_hash(LEAF_HASHES[0], LEAF_HASHES[1]) == ROOTS[2]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_reference_inclusion_proofs_are_made_and_verified(
    index: int, size: int, proof: list[bytes]
) -> None:
    assert merkle.inclusion_proof(index, LEAF_HASHES[:size]) == proof
    merkle.verify_inclusion(index, size, LEAF_HASHES[index], proof, ROOTS[size])


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_reference_consistency_proofs_are_made_and_verified(
    first: int, second: int, proof: list[bytes]
) -> None:
    assert merkle.consistency_proof(first, LEAF_HASHES[:second]) == proof
    merkle.verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_corrupted_inclusion_proofs_are_refused(index: int, size: int, proof: list[bytes]) -> None:
    root, leaf = ROOTS[size], LEAF_HASHES[index]
    some_hash = h("abacaba000000000000000000000000000000000000000000060061e00123456")
    probes = [
        (index - 1, size, leaf, proof, root),
        (index + 1, size, leaf, proof, root),
        (index ^ 2, size, leaf, proof, root),
        (index, size * 2, leaf, proof, root),
        (index, size // 2, leaf, proof, root),
        (index, size, merkle.leaf_hash(b"wrong"), proof, root),
        (index, size, leaf, proof, ROOTS[0]),
        (index, size, leaf, proof, some_hash),
        (index, size, leaf, [*proof, root], root),
        (index, size, leaf, [root, *proof], root),
        (index, size, leaf, proof[:-1], root),
        (index, size, leaf, [proof[0], some_hash, *proof[1:]], root),
    ]
    for position in range(len(proof)):
        flipped = list(proof)
        flipped[position] = bytes([flipped[position][0] ^ 8]) + flipped[position][1:]
        probes.append((index, size, leaf, flipped, root))
    for probe in probes:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*probe)


@pytest.mark.parametrize(("first", "second", "proof"), [c for c in CONSISTENCY if c[2]])
def test_corrupted_consistency_proofs_are_refused(
    first: int, second: int, proof: list[bytes]
) -> None:
    root1, root2 = ROOTS[first], ROOTS[second]
    probes = [
        (first - 1, second, root1, root2, proof),
        (first + 1, second, root1, root2, proof),
        (first ^ 2, second, root1, root2, proof),
        (first, second * 2, root1, root2, proof),
        (first, second // 2, root1, root2, proof),
        (first, second, ROOTS[0], root2, proof),
        (first, second, root1, ROOTS[0], proof),
        (first, second, root2, root1, proof),
        (first, second, root1, root2, []),
        (first, second, root1, root2, [*proof, root1]),
        (first, second, root1, root2, [root2, *proof]),
        (first, second, root1, root2, [proof[0], *proof]),
        (first, second, root1, root2, proof[:-1]),
    ]
    for position in range(len(proof)):
        flipped = list(proof)
        flipped[position] = bytes([flipped[position][0] ^ 16]) + flipped[position][1:]
        probes.append((first, second, root1, root2, flipped))
    for probe in probes:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*probe)


def test_edge_sizes_of_consistency() -> None:
    merkle.verify_consistency(0, 0, ROOTS[0], ROOTS[0], [])
    merkle.verify_consistency(0, 5, ROOTS[0], ROOTS[5], [])
    with pytest.raises(ProofError, match="shrank"):
        merkle.verify_consistency(5, 4, ROOTS[5], ROOTS[4], [])
    with pytest.raises(ProofError, match="same size"):
        merkle.verify_consistency(3, 3, ROOTS[3], ROOTS[4], [])


def test_inclusion_inputs_out_of_range_are_named() -> None:
    with pytest.raises(ProofError, match="outside a tree of size 3"):
        merkle.verify_inclusion(3, 3, LEAF_HASHES[0], [], ROOTS[3])
    with pytest.raises(ProofError, match="outside"):
        merkle.inclusion_proof(8, LEAF_HASHES)


# --------------------------------------------------------------------------------------------
# pymerkle as an independent oracle
# --------------------------------------------------------------------------------------------


def _pymerkle_tree(entries: list[bytes]) -> pymerkle.InmemoryTree:
    # security=True (the default) is RFC 9162's 0x00/0x01 prefixes; disable_security would
    # hash without them and disagree with every CT implementation.
    tree = pymerkle.InmemoryTree(algorithm="sha256")
    for entry in entries:
        tree.append_entry(entry)
    return tree


def test_pymerkle_agrees_with_the_reference_vectors() -> None:
    tree = _pymerkle_tree(LEAVES)
    for size in range(1, 9):
        assert tree.get_root(size) == ROOTS[size]


@settings(max_examples=60, deadline=None)
@given(
    entries=st.lists(st.binary(max_size=12), min_size=1, max_size=70),
    data=st.data(),
)
def test_roots_and_proofs_agree_with_pymerkle(entries: list[bytes], data: st.DataObject) -> None:
    tree = _pymerkle_tree(entries)
    hashes = [merkle.leaf_hash(entry) for entry in entries]
    size = data.draw(st.integers(1, len(entries)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    first = data.draw(st.integers(1, size), label="first")
    oracle_root = tree.get_root(size)
    assert merkle.root(hashes[:size]) == oracle_root

    # Our inclusion proof leads to pymerkle's root; pymerkle's audit path (after its leading
    # base hash) is our proof and verifies with our verifier.
    ours = merkle.inclusion_proof(index, hashes[:size])
    merkle.verify_inclusion(index, size, hashes[index], ours, oracle_root)
    theirs = tree.prove_inclusion(index + 1, size)
    pymerkle.verify_inclusion(hashes[index], merkle.root(hashes[:size]), theirs)
    their_path = [bytes.fromhex(item) for item in theirs.serialize()["path"]]
    merkle.verify_inclusion(index, size, hashes[index], their_path[1:], oracle_root)

    # Consistency: ours verifies against pymerkle's roots; pymerkle's verifies against ours.
    our_consistency = merkle.consistency_proof(first, hashes[:size])
    merkle.verify_consistency(first, size, tree.get_root(first), oracle_root, our_consistency)
    their_consistency = tree.prove_consistency(first, size)
    pymerkle.verify_consistency(
        merkle.root(hashes[:first]), merkle.root(hashes[:size]), their_consistency
    )


# --------------------------------------------------------------------------------------------
# tlog stored hashes
# --------------------------------------------------------------------------------------------


def test_tlog_stored_hashes_agree_with_merkle_for_every_size_up_to_300() -> None:
    store: list[bytes] = []
    hashes: list[bytes] = []
    reads: list[int] = []

    def reader(indexes: Sequence[int]) -> list[bytes]:
        reads.append(len(indexes))
        return [store[i] for i in indexes]

    for n in range(300):
        leaf = merkle.leaf_hash(n.to_bytes(2, "big"))
        hashes.append(leaf)
        assert len(store) == tlog.stored_hash_index(0, n)
        store.extend(tlog.stored_hashes_for_record(n, leaf, reader))
        assert len(store) == tlog.stored_hash_count(n + 1)
        size = n + 1
        assert tlog.tree_hash(size, reader) == merkle.root(hashes)
    for index in range(len(store)):
        level, n = tlog.split_stored_hash_index(index)
        assert tlog.stored_hash_index(level, n) == index
    # Every proof of every size: equal to merkle.py's (so RFC 9162 verifiers accept it).
    for size in range(1, 301, 7):
        root = merkle.root(hashes[:size])
        for index in range(size):
            proof = tlog.prove_record(size, index, reader)
            assert proof == merkle.inclusion_proof(index, hashes[:size])
        for first in range(0, size + 1):
            proof = tlog.prove_tree(size, first, reader)
            assert proof == merkle.consistency_proof(first, hashes[:size])
            merkle.verify_consistency(first, size, merkle.root(hashes[:first]), root, proof)
    # Reads are logarithmic: never more than 2·log2(300) + 2 hashes per call.
    assert max(reads) <= 2 * 9 + 2


def test_tlog_reproduces_the_reference_node_hashes() -> None:
    # transparency-dev/merkle testonly NodeHashes: level 1 and 2 subtree hashes.
    store: list[bytes] = []
    for n, leaf in enumerate(LEAF_HASHES):
        store.extend(tlog.stored_hashes_for_record(n, leaf, lambda ix: [store[i] for i in ix]))
    assert store[tlog.stored_hash_index(1, 2)] == h(
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
    )
    assert store[tlog.stored_hash_index(2, 1)] == h(
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
    )
    assert store[tlog.stored_hash_index(3, 0)] == ROOTS[8]
