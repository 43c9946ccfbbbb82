"""The stored-hash layout of ``golang.org/x/mod/sumdb/tlog`` (after Crosby and Wallach,
"Efficient Data Structures for Tamper-Evident Logging", §3.3), ported to Python.

Every hash of a complete subtree gets a dense linear index: leaf *n*'s hash is stored, then
the hashes of the complete subtrees leaf *n* closes. A log of *n* leaves stores about 2n
hashes, written append-only, and a root, an inclusion proof or a consistency proof reads at
most O(log n) of them in one call of ``reader(indexes) -> list[bytes]``.

Proofs made here are RFC 9162 proofs (same order of hashes as ``merkle``), so any RFC 9162
verifier checks them. One difference from Go: the empty tree's hash is RFC 9162's
``SHA-256("")`` (``merkle.EMPTY_ROOT``), not 32 zero bytes, so roots agree with ``merkle.root``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pilar.exchange.translog.merkle import EMPTY_ROOT, ProofError, node_hash

HashReader = Callable[[Sequence[int]], Sequence[bytes]]


def _maxpow2(n: int) -> tuple[int, int]:
    """k, the largest power of 2 smaller than n (n > 1), and l = log2 k."""
    level = (n - 1).bit_length() - 1
    return 1 << level, level


def _trailing_ones(n: int) -> int:
    """Trailing zero bits of n + 1: the complete subtrees leaf n closes."""
    m = n + 1
    return (m & -m).bit_length() - 1


def stored_hash_index(level: int, n: int) -> int:
    """The storage index of the hash of the n-th subtree at ``level`` (0 = leaves)."""
    # Level L's n-th hash is written right after level L+1's (2n+1)-th hash: descend to the
    # leaf that closes the subtree, then count everything stored before that leaf.
    for _ in range(level):
        n = 2 * n + 1
    i = 0
    while n > 0:
        i += n
        n >>= 1
    return i + level


def split_stored_hash_index(index: int) -> tuple[int, int]:
    """The inverse of ``stored_hash_index``: (level, n)."""
    n = index // 2
    index_n = stored_hash_index(0, n)
    if index_n > index:
        raise AssertionError("bad math in split_stored_hash_index")
    while True:
        x = index_n + 1 + _trailing_ones(n)
        if x > index:
            break
        n += 1
        index_n = x
    level = index - index_n
    return level, n >> level


def stored_hash_count(n: int) -> int:
    """How many hashes a tree of n leaves has stored."""
    if n == 0:
        return 0
    count = stored_hash_index(0, n - 1) + 1
    i = n - 1
    while i & 1:
        count += 1
        i >>= 1
    return count


def stored_hashes_for_record(n: int, leaf: bytes, reader: HashReader) -> list[bytes]:
    """The hashes to store when leaf n (with hash ``leaf``) is appended, starting at
    ``stored_hash_index(0, n)``: the leaf hash, then one hash per subtree it completes."""
    m = _trailing_ones(n)
    indexes = [0] * m
    for i in range(m):
        indexes[m - 1 - i] = stored_hash_index(i, (n >> i) - 1)
    old = list(reader(indexes)) if m else []
    if len(old) != m:
        raise ProofError(f"hash reader returned {len(old)} hashes for {m} indexes")
    hashes = [leaf]
    h = leaf
    for i in range(m):
        h = node_hash(old[m - 1 - i], h)
        hashes.append(h)
    return hashes


def _sub_tree_index(lo: int, hi: int, need: list[int]) -> list[int]:
    while lo < hi:
        k, level = _maxpow2(hi - lo + 1)
        if lo & (k - 1):
            raise AssertionError("bad math in _sub_tree_index")
        need.append(stored_hash_index(level, lo >> level))
        lo += k
    return need


def _sub_tree_hash(lo: int, hi: int, hashes: list[bytes]) -> tuple[bytes, list[bytes]]:
    # The range splits into complete subtrees of decreasing size, each one stored hash; the
    # hash of the range folds them from the right.
    count = 0
    while lo < hi:
        k, _ = _maxpow2(hi - lo + 1)
        count += 1
        lo += k
    if len(hashes) < count:
        raise AssertionError("bad index math in _sub_tree_hash")
    h = hashes[count - 1]
    for i in range(count - 2, -1, -1):
        h = node_hash(hashes[i], h)
    return h, hashes[count:]


def _read(reader: HashReader, indexes: list[int]) -> list[bytes]:
    if not indexes:
        return []
    hashes = list(reader(indexes))
    if len(hashes) != len(indexes):
        raise ProofError(f"hash reader returned {len(hashes)} hashes for {len(indexes)} indexes")
    return hashes


def tree_hash_indexes(n: int) -> list[int]:
    """The stored hashes ``tree_hash(n)`` reads (at most 1 + log2 n)."""
    return _sub_tree_index(0, n, []) if n else []


def tree_hash(n: int, reader: HashReader) -> bytes:
    """The root hash of the tree of the first n leaves."""
    if n == 0:
        return EMPTY_ROOT
    hashes = _read(reader, tree_hash_indexes(n))
    h, rest = _sub_tree_hash(0, n, hashes)
    if rest:
        raise AssertionError("bad index math in tree_hash")
    return h


def _leaf_proof_index(lo: int, hi: int, n: int, need: list[int]) -> list[int]:
    if lo + 1 == hi:
        return need
    k, _ = _maxpow2(hi - lo)
    if n < lo + k:
        need = _leaf_proof_index(lo, lo + k, n, need)
        need = _sub_tree_index(lo + k, hi, need)
    else:
        need = _sub_tree_index(lo, lo + k, need)
        need = _leaf_proof_index(lo + k, hi, n, need)
    return need


def _leaf_proof(lo: int, hi: int, n: int, hashes: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    if lo + 1 == hi:
        return [], hashes
    k, _ = _maxpow2(hi - lo)
    if n < lo + k:
        proof, hashes = _leaf_proof(lo, lo + k, n, hashes)
        th, hashes = _sub_tree_hash(lo + k, hi, hashes)
    else:
        th, hashes = _sub_tree_hash(lo, lo + k, hashes)
        proof, hashes = _leaf_proof(lo + k, hi, n, hashes)
    proof.append(th)
    return proof, hashes


def prove_record(t: int, n: int, reader: HashReader) -> list[bytes]:
    """The inclusion proof (audit path) of leaf n in the tree of size t."""
    if t < 0 or n < 0 or n >= t:
        raise ProofError(f"leaf index {n} is outside a tree of size {t}")
    hashes = _read(reader, _leaf_proof_index(0, t, n, []))
    proof, rest = _leaf_proof(0, t, n, hashes)
    if rest:
        raise AssertionError("bad index math in prove_record")
    return proof


def _tree_proof_index(lo: int, hi: int, n: int, need: list[int]) -> list[int]:
    if n == hi:
        if lo == 0:
            return need
        return _sub_tree_index(lo, hi, need)
    k, _ = _maxpow2(hi - lo)
    if n <= lo + k:
        need = _tree_proof_index(lo, lo + k, n, need)
        need = _sub_tree_index(lo + k, hi, need)
    else:
        need = _sub_tree_index(lo, lo + k, need)
        need = _tree_proof_index(lo + k, hi, n, need)
    return need


def _tree_proof(lo: int, hi: int, n: int, hashes: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    if n == hi:
        if lo == 0:
            # This subtree is exactly the old tree: the verifier knows its hash.
            return [], hashes
        th, hashes = _sub_tree_hash(lo, hi, hashes)
        return [th], hashes
    k, _ = _maxpow2(hi - lo)
    if n <= lo + k:
        proof, hashes = _tree_proof(lo, lo + k, n, hashes)
        th, hashes = _sub_tree_hash(lo + k, hi, hashes)
    else:
        th, hashes = _sub_tree_hash(lo, lo + k, hashes)
        proof, hashes = _tree_proof(lo + k, hi, n, hashes)
    proof.append(th)
    return proof, hashes


def prove_tree(t: int, n: int, reader: HashReader) -> list[bytes]:
    """The consistency proof that the tree of size n is a prefix of the tree of size t
    (empty when n is 0 or t)."""
    if n < 0 or t < 0 or n > t:
        raise ProofError(f"no consistency proof from size {n} to size {t}")
    if n in (0, t):
        return []
    hashes = _read(reader, _tree_proof_index(0, t, n, []))
    proof, rest = _tree_proof(0, t, n, hashes)
    if rest:
        raise AssertionError("bad index math in prove_tree")
    return proof
