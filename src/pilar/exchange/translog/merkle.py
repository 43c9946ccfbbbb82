"""RFC 9162 (formerly RFC 6962) Merkle tree hashing and proofs, on lists of leaf hashes.

- leaf hash ``SHA-256(0x00 || leaf)``, node hash ``SHA-256(0x01 || left || right)``;
- ``root`` is the Merkle Tree Hash (MTH) of any number of leaves; the empty tree's root is
  ``SHA-256("")``;
- ``inclusion_proof``/``consistency_proof`` build audit paths and consistency proofs
  (RFC 9162 §2.1.3.1, §2.1.4.1) and ``verify_inclusion``/``verify_consistency`` check them with
  the algorithms of §2.1.3.2 and §2.1.4.2, raising ``ProofError`` with what failed.

These functions take the leaf hashes in memory; they are the reference the database-backed
log (``tlog`` layout) is tested against, and the verifiers every reader of the log uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof, or the inputs it was checked against, does not verify."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) for the given leaf hashes.

    Computed bottom-up in one pass (pairs of each level, the odd last node carried up), which
    equals RFC 9162's recursive definition and needs no recursion for large trees."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) (RFC 9162 §2.1.3.1): the audit path of leaf ``index``."""
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    return _path(index, leaf_hashes)


def _path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, leaves[:k]), root(leaves[k:])]
    return [*_path(m - k, leaves[k:]), root(leaves[:k])]


def consistency_proof(first: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) (RFC 9162 §2.1.4.1): that the tree of size ``first`` is a prefix of the
    tree of the given leaves. Empty when ``first`` is 0 or the whole tree."""
    size = len(leaf_hashes)
    if not 0 <= first <= size:
        raise ProofError(f"size {first} is outside 0..{size}")
    if first in (0, size):
        return []
    return _subproof(first, leaf_hashes, True)


def _subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root(leaves[:k])]


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} has {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof implies (RFC 9162 §2.1.3.2 steps 1–5)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hash(leaf, "the leaf hash")
    fn, sn, r = index, size - 1, leaf
    for position, p in enumerate(proof):
        _check_hash(p, f"proof element {position}")
        if sn == 0:
            raise ProofError(
                f"inclusion proof for leaf {index} in size {size} is too long ({len(proof)} hashes)"
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(
            f"inclusion proof for leaf {index} in size {size} is too short ({len(proof)} hashes)"
        )
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes
) -> None:
    """Check that ``leaf`` is leaf ``index`` of the tree of ``size`` with ``root_hash``."""
    _check_hash(root_hash, "the root hash")
    if root_from_inclusion_proof(index, size, leaf, proof) != root_hash:
        raise ProofError(
            f"inclusion proof for leaf {index} in size {size} does not lead to the root hash"
        )


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``size1`` with ``root1`` is a prefix of the tree of ``size2`` with
    ``root2`` (RFC 9162 §2.1.4.2; the equal and empty sizes as in transparency-dev/merkle)."""
    if size1 < 0 or size2 < 0:
        raise ProofError("tree sizes cannot be negative")
    if size2 < size1:
        raise ProofError(f"size {size2} is smaller than size {size1}: the log shrank")
    if size1 == size2:
        if proof:
            raise ProofError(f"consistency proof between equal sizes {size1} must be empty")
        if root1 != root2:
            raise ProofError(f"two different root hashes for the same size {size1}")
        return
    if size1 == 0:
        # The empty tree is a prefix of every tree; there is nothing to prove.
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        return
    _check_hash(root1, "the first root hash")
    _check_hash(root2, "the second root hash")
    # Step 1.
    if not proof:
        raise ProofError(f"consistency proof from size {size1} to {size2} is empty")
    for position, p in enumerate(proof):
        _check_hash(p, f"proof element {position}")
    path = list(proof)
    # Step 2: when the first tree is a complete subtree, its root is the proof's start.
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    # Steps 3–4.
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise ProofError(
                f"consistency proof from size {size1} to {size2} is too long ({len(proof)} hashes)"
            )
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise ProofError(
            f"consistency proof from size {size1} to {size2} is too short ({len(proof)} hashes)"
        )
    if fr != root1:
        raise ProofError(
            f"consistency proof does not lead to the root hash of size {size1}: "
            "the old tree is not a prefix of the new one"
        )
    if sr != root2:
        raise ProofError(f"consistency proof does not lead to the root hash of size {size2}")
