"""The transparency log's pure core (no Django): RFC 9162 Merkle hashing and proofs
(``merkle``), the tlog stored-hash layout of ``golang.org/x/mod/sumdb/tlog`` (``tlog``), and
C2SP signed notes, checkpoints and cosignatures (``note``). ``pilar.exchange.log`` stores the
log in the database on top of these."""
